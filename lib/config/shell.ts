/**
 * The subset of shell the CernVM-FS configuration files are written in: `NAME=value` assignments, optionally
 * after `export`, values unquoted, 'single-quoted' or "double-quoted", `$VAR`, `${VAR}`, `${VAR:-default}` and
 * `${VAR:=default}` expansion (not inside single quotes), `#` comments. Anything else is an error naming the file
 * and line. A file with more than this (control flow, commands) is run by a shell instead (sh-eval.ts).
 * @module
 */
import { CvmfsError } from '../errors.js';

/** One assignment as written. */
export interface Assignment {
  name: string;
  value: string;
  line: number;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

function fail(file: string, line: number, why: string): never {
  throw new CvmfsError('EINVAL', `${file}:${line}: ${why}`);
}

/**
 * Parses `text`, expanding variables from `vars` (and from assignments made earlier in the text, which
 * `${VAR:=default}` also makes), and returns the assignments in order.
 */
export function parseAssignments(text: string, file: string, vars: Map<string, string>): Assignment[] {
  const out: Assignment[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let s = lines[i]!.replace(/\r$/, '').trim();
    if (!s || s.startsWith('#')) continue;
    if (/^export\s+/.test(s)) s = s.replace(/^export\s+/, '');
    const m = NAME.exec(s);
    if (!m || s[m[0].length] !== '=') fail(file, lineNo, `not an assignment: ${lines[i]!.trim()}`);
    const name = m[0];
    const value = parseValue(s.slice(name.length + 1), file, lineNo, vars);
    vars.set(name, value);
    out.push({ name, value, line: lineNo });
  }
  return out;
}

function parseValue(s: string, file: string, line: number, vars: Map<string, string>): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) break; // a comment
    if (/\s/.test(c)) {
      // Only trailing blanks (and a comment) may follow a value.
      const rest = s.slice(i).trim();
      if (rest && !rest.startsWith('#')) fail(file, line, `unexpected text after the value: ${rest}`);
      break;
    }
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) fail(file, line, 'unterminated single quote');
      out += s.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) {
          out += s[i + 1];
          i += 2;
        } else if (s[i] === '$') {
          const [v, n] = expand(s, i, file, line, vars);
          out += v;
          i = n;
        } else {
          out += s[i++];
        }
      }
      if (s[i] !== '"') fail(file, line, 'unterminated double quote');
      i++;
    } else if (c === '$') {
      const [v, n] = expand(s, i, file, line, vars);
      out += v;
      i = n;
    } else if (c === '\\' && i + 1 < s.length) {
      out += s[i + 1];
      i += 2;
    } else if ('`;&|<>()'.includes(c)) {
      fail(file, line, `shell syntax that is not an assignment ('${c}')`);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Expands the variable reference at s[i] ('$'); returns its value and the index after it. */
function expand(s: string, i: number, file: string, line: number, vars: Map<string, string>): [string, number] {
  if (s[i + 1] === '{') {
    const end = s.indexOf('}', i + 2);
    if (end < 0) fail(file, line, 'unterminated ${');
    const body = s.slice(i + 2, end);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])(.*))?$/s.exec(body);
    if (!m) fail(file, line, `unsupported expansion \${${body}}`);
    const [, name, op, word] = m;
    const cur = vars.get(name!);
    if (!op) return [cur ?? '', end + 1];
    const unset = op.startsWith(':') ? !cur : cur === undefined;
    const dflt = parseValue(word ?? '', file, line, vars);
    if (unset && op.endsWith('=')) vars.set(name!, dflt);
    return [unset ? dflt : cur!, end + 1];
  }
  const m = NAME.exec(s.slice(i + 1));
  if (!m) return ['$', i + 1];
  return [vars.get(m[0]) ?? '', i + 1 + m[0].length];
}
