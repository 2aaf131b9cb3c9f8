/**
 * The one thing the connector needs from an ELF file: its program interpreter (PT_INTERP), the dynamic loader
 * the kernel opens itself at execve. When it lies under /cvmfs (EESSI's compatibility layer ships its own
 * loader there), the kernel cannot see it; the connector then runs the loader with the program as argument.
 * Pure function over bytes; ELF32 and ELF64, either byte order.
 * @module
 */

const PT_INTERP = 3;

/** Reads `length` bytes at `offset` of the file (fewer at its end). */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

/** The PT_INTERP path of an ELF file, or undefined when it is not ELF or has none (static programs). */
export async function elfInterpreter(read: ReadAt): Promise<string | undefined> {
  const h = await read(0, 64);
  if (h.length < 52 || h.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = h[4] === 2;
  const le = h[5] === 1;
  if ((!is64 && h[4] !== 1) || (!le && h[5] !== 2) || (is64 && h.length < 64)) return undefined;
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const phoff = is64 ? u64(h, 32) : u32(h, 28);
  const phentsize = u16(h, is64 ? 54 : 42);
  const phnum = u16(h, is64 ? 56 : 44);
  // Offsets past 2^53 are no file's: a read there would be taken (as node:fs takes it) from the current position.
  if (phnum === 0 || phentsize < (is64 ? 56 : 32) || phentsize > 256 || phnum > 4096 || !Number.isSafeInteger(phoff)) return undefined;
  const ph = await read(phoff, phnum * phentsize);
  for (let i = 0; i < phnum && (i + 1) * phentsize <= ph.length; i++) {
    const o = i * phentsize;
    if (u32(ph, o) !== PT_INTERP) continue;
    const offset = is64 ? u64(ph, o + 8) : u32(ph, o + 4);
    const size = is64 ? u64(ph, o + 32) : u32(ph, o + 16);
    if (size <= 1 || size > 4096 || !Number.isSafeInteger(offset)) return undefined;
    const s = await read(offset, size);
    const nul = s.indexOf(0);
    return s.subarray(0, nul < 0 ? s.length : nul).toString('latin1');
  }
  return undefined;
}
