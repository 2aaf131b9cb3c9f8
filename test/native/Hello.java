// A Java program for test/programs.test.ts: prints java.home (the JVM finds it from /proc/self/exe), walks and
// hashes a directory through java.nio, and starts a second JVM from the same home.
import java.nio.file.*;
import java.security.MessageDigest;
import java.util.stream.*;
public class Hello {
  public static void main(String[] a) throws Exception {
    System.out.println("home " + System.getProperty("java.home"));
    Path root = Paths.get(a[0]);
    try (Stream<Path> s = Files.walk(root)) {
      java.util.List<Path> files = s.filter(Files::isRegularFile).sorted().collect(Collectors.toList());
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (Path p : files) md.update(Files.readAllBytes(p));
      StringBuilder h = new StringBuilder();
      for (byte b : md.digest()) h.append(String.format("%02x", b));
      System.out.println("files " + files.size() + " " + h);
    }
    Process p = new ProcessBuilder(System.getProperty("java.home") + "/bin/java", "-XX:-UsePerfData", "-version").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    System.out.println("child " + p.waitFor() + " " + out.lines().findFirst().orElse(""));
  }
}
