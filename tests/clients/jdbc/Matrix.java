// pgJDBC (Debian's libpostgresql-jdbc-java) runs the compatibility matrix's
// scenario, the same steps and values as tests/clients/matrix/scenario.py
// (read its docstring): one JSON line per operation on stdout, driven by
// tests/integration/test_matrix.py. pgJDBC 42.5 has no direct TLS
// (sslNegotiation=direct came in 42.7.4) and exposes no TLS state of its
// own, so client_tls is null: sslmode=require already fails rather than
// falling back to plaintext.
//
// Usage: java -cp /usr/share/java/postgresql.jar:CLASSES Matrix HOST PORT USER PASSWORD DBNAME TLS CA SERVERNAME ROWS
//   PASSWORD "" for none; TLS disable | require | verify-full | direct.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Callable;

import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class Matrix {
  static final String PREPARED_LISTED =
      "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%$1::int * 3%'";
  static final String COPY_IN_CHECK =
      "SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM matrix_rows WHERE id > 1000";

  public static void main(String[] a) throws Exception {
    System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8));
    String host = a[0], port = a[1], user = a[2], password = a[3], db = a[4], tls = a[5], ca = a[6], name = a[7];
    int rows = Integer.parseInt(a[8]);
    if (tls.equals("direct")) {
      emitError("login", "unsupported: pgJDBC " + org.postgresql.util.DriverInfo.DRIVER_VERSION
          + " has no direct TLS (sslNegotiation=direct is pgJDBC 42.7.4+)", null, true);
      return;
    }
    String url = "jdbc:postgresql://" + (tls.equals("verify-full") ? name : host) + ":" + port + "/" + db
        + "?sslmode=" + tls + (tls.equals("verify-full") ? "&sslrootcert=" + ca : "");
    Properties props = new Properties();
    props.setProperty("user", user);
    if (!password.isEmpty()) props.setProperty("password", password);
    props.setProperty("connectTimeout", "10");
    props.setProperty("prepareThreshold", "1");  // the first execution already uses a named statement
    Connection c;
    try {
      c = DriverManager.getConnection(url, props);
      c.setAutoCommit(true);
      emit("login", "{\"user\": " + str(one(c, "SELECT current_user")) + ", \"client_tls\": null}");
    } catch (SQLException e) {
      emitError("login", e.getMessage(), e.getSQLState(), false);
      return;
    }
    step("query", () -> {
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT 40 + 2, 'caf\u00e9 \u4e2d'")) {
        r.next();
        return "[" + r.getInt(1) + ", " + str(r.getString(2)) + "]";
      }
    });
    step("prepared", () -> {
      List<String> got = new ArrayList<>();
      try (PreparedStatement p = c.prepareStatement("SELECT ?::int * 3")) {
        for (int i = 1; i <= 3; i++) {
          p.setInt(1, i);
          try (ResultSet r = p.executeQuery()) {
            r.next();
            got.add(String.valueOf(r.getInt(1)));
          }
        }
        boolean listed = Integer.parseInt(one(c, PREPARED_LISTED)) >= 1;
        return "{\"results\": [" + String.join(", ", got) + "], \"listed\": " + listed + "}";
      }
    });
    step("transaction", () -> {
      try (Statement s = c.createStatement()) {
        s.execute("CREATE TEMP TABLE matrix_rows (id int PRIMARY KEY, v text NOT NULL)");
        c.setAutoCommit(false);
        s.execute("INSERT INTO matrix_rows VALUES (1, 'kept')");
        c.commit();
        s.execute("INSERT INTO matrix_rows VALUES (2, 'rolled back')");
        c.rollback();
        c.setAutoCommit(true);
        List<String> ids = new ArrayList<>();
        try (ResultSet r = s.executeQuery("SELECT id FROM matrix_rows ORDER BY id")) {
          while (r.next()) ids.add(String.valueOf(r.getInt(1)));
        }
        return "[" + String.join(", ", ids) + "]";
      }
    });
    CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
    step("copy_in", () -> {
      StringBuilder text = new StringBuilder();
      for (int i = 1; i <= rows; i++) {
        text.append(1000 + i).append("\tr").append(i).append("\\t\\\\ \u00e9\u4e2d\n");
      }
      copy.copyIn("COPY matrix_rows (id, v) FROM STDIN", new StringReader(text.toString()));
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(COPY_IN_CHECK)) {
        r.next();
        return "{\"count\": " + r.getInt(1) + ", \"md5\": " + str(r.getString(2)) + "}";
      }
    });
    step("copy_out", () -> {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      long[] lines = {0};
      copy.copyOut("COPY (SELECT g, md5(g::text) FROM generate_series(1, " + rows + ") g) TO STDOUT",
          new OutputStream() {
            @Override public void write(int b) { digest.update((byte) b); if (b == '\n') lines[0]++; }
            @Override public void write(byte[] b, int off, int len) {
              digest.update(b, off, len);
              for (int i = off; i < off + len; i++) if (b[i] == '\n') lines[0]++;
            }
          });
      return "{\"rows\": " + lines[0] + ", \"sha256\": " + str(HexFormat.of().formatHex(digest.digest())) + "}";
    });
    step("cancel", () -> {
      try (Statement s = c.createStatement()) {
        long start = System.nanoTime();
        Thread canceller = new Thread(() -> {
          try {
            Thread.sleep(300);
            s.cancel();
          } catch (Exception ignored) {
            // the statement then runs its 20 s, and the check below fails
          }
        });
        canceller.start();
        String state = null;
        try {
          s.execute("SELECT pg_sleep(20)");
        } catch (SQLException e) {
          state = e.getSQLState();
        }
        canceller.join();
        double seconds = (System.nanoTime() - start) / 1e9;
        return "{\"sqlstate\": " + str(state) + ", \"seconds\": " + seconds + ", \"after\": " + one(c, "SELECT 1") + "}";
      }
    });
    c.close();
  }

  static String one(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {
      r.next();
      return r.getString(1);
    }
  }

  static void step(String op, Callable<String> body) {
    try {
      emit(op, body.call());
    } catch (SQLException e) {
      emitError(op, e.getMessage(), e.getSQLState(), false);
    } catch (Exception e) {
      emitError(op, e.toString(), null, false);
    }
  }

  static void emit(String op, String value) {
    System.out.println("{\"op\": " + str(op) + ", \"ok\": true, \"value\": " + value + "}");
  }

  static void emitError(String op, String error, String sqlstate, boolean unsupported) {
    System.out.println("{\"op\": " + str(op) + ", \"ok\": false, \"error\": " + str(error) + ", \"sqlstate\": "
        + str(sqlstate) + (unsupported ? ", \"unsupported\": true" : "") + "}");
  }

  static String str(String s) {
    if (s == null) return "null";
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\t' -> b.append("\\t");
        case '\r' -> b.append("\\r");
        default -> {
          if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
          else b.append(ch);
        }
      }
    }
    return b.append('"').toString();
  }
}
