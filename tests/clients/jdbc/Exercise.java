// pgJDBC (Debian's libpostgresql-jdbc-java) through pgwarden, or straight to
// PostgreSQL for comparison. Runs what a Java application does: plain
// statements and an error, a prepared statement past pgJDBC's
// prepareThreshold (so it becomes a named server-side statement), a batch
// (pgJDBC pipelines every Bind/Execute of a batch before one Sync),
// transactions with a savepoint, a result set read with a fetch size (a
// portal suspended and resumed every 100 rows), COPY both ways, cancel of a
// running statement, DatabaseMetaData's catalog queries and typed
// parameters; then prints one JSON object with what it saw for
// tests/integration/test_jdbc.py to check.
//
// Usage: java -cp /usr/share/java/postgresql.jar Exercise.java URL USER PASSWORD TABLE COPY_ROWS [denied SQL]
//   PASSWORD "" for none; TABLE is created empty by the caller (id int primary key, v text).
//   With a denied SQL, only checks that it fails and that the connection stays usable.
// Exit status 0 with the result on stdout; 1 with {"error": ...} on stdout.

import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.postgresql.PGConnection;
import org.postgresql.PGStatement;
import org.postgresql.copy.CopyManager;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

public class Exercise {
  static final int BATCH_ROWS = 200;
  static final int FETCH_ROWS = 10000;

  public static void main(String[] args) {
    Map<String, Object> out = new LinkedHashMap<>();
    try {
      String url = args[0], user = args[1], password = args[2], table = args[3];
      int copyRows = Integer.parseInt(args[4]);
      Properties props = new Properties();
      props.setProperty("user", user);
      if (!password.isEmpty()) props.setProperty("password", password);
      props.setProperty("ApplicationName", "jdbc-exercise");
      props.setProperty("connectTimeout", "10");
      try (Connection c = DriverManager.getConnection(url, props)) {
        if (args.length > 5) {
          out.put("denied", denied(c, args[5]));
        } else {
          out.put("identity", identity(c));
          out.put("simple", simple(c));
          out.put("prepared", prepared(c, table));
          out.put("batch", batch(c, table));
          out.put("transactions", transactions(c, table));
          out.put("fetch_size", fetchSize(c));
          out.put("copy", copy(c, table, copyRows));
          out.put("cancel", cancel(c));
          out.put("metadata", metadata(c, table));
          out.put("types", types(c));
        }
      }
      System.out.println(json(out));
    } catch (Exception e) {
      Map<String, Object> err = new LinkedHashMap<>();
      err.put("error", e.toString());
      if (e instanceof SQLException s) err.put("sqlstate", s.getSQLState());
      System.out.println(json(err));
      System.exit(1);
    }
  }

  static Object one(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getObject(1);
    }
  }

  // Who the server says this is, and whether its hop to the server is TLS.
  static Map<String, Object> identity(Connection c) throws SQLException {
    Map<String, Object> r = new LinkedHashMap<>();
    try (Statement st = c.createStatement();
         ResultSet rs = st.executeQuery("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
      rs.next();
      r.put("current_user", rs.getString(1));
      r.put("backend_ssl", rs.getBoolean(2));
    }
    return r;
  }

  static Map<String, Object> simple(Connection c) throws SQLException {
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("answer", one(c, "SELECT 42"));
    try (Statement st = c.createStatement()) {
      st.executeQuery("SELECT 1/0");
      r.put("error_code", null);
    } catch (SQLException e) {
      r.put("error_code", e.getSQLState());
    }
    r.put("usable_after_error", one(c, "SELECT 'still here'"));
    return r;
  }

  // pgJDBC switches a PreparedStatement to a named server-side statement on
  // its fifth execution (prepareThreshold=5).
  static Map<String, Object> prepared(Connection c, String table) throws SQLException {
    try (Statement st = c.createStatement()) {
      st.executeUpdate("INSERT INTO " + table + " VALUES (1, 'one'), (2, 'two'), (3, 'three')");
    }
    List<Object> results = new ArrayList<>();
    boolean serverPrepared = false;
    try (PreparedStatement ps = c.prepareStatement("SELECT v FROM " + table + " WHERE id = ?")) {
      for (int i = 0; i < 9; ++i) {
        ps.setInt(1, i % 3 + 1);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          results.add(rs.getString(1));
        }
      }
      serverPrepared = ps.unwrap(PGStatement.class).isUseServerPrepare();
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("results", results);
      r.put("server_prepared", serverPrepared);
      r.put("named_on_server", one(c, "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT v FROM "
                                         + table + " WHERE id = $1'"));
      return r;
    }
  }

  static Map<String, Object> batch(Connection c, String table) throws SQLException {
    int[] counts;
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?)")) {
      for (int i = 0; i < BATCH_ROWS; ++i) {
        ps.setInt(1, 1000 + i);
        ps.setString(2, "batch " + i);
        ps.addBatch();
      }
      counts = ps.executeBatch();
    }
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("statements", counts.length);
    r.put("all_one_row", Arrays.stream(counts).allMatch(n -> n == 1));
    r.put("rows", one(c, "SELECT count(*) FROM " + table + " WHERE id >= 1000"));
    return r;
  }

  static Map<String, Object> transactions(Connection c, String table) throws SQLException {
    c.setAutoCommit(false);
    try (Statement st = c.createStatement()) {
      st.executeUpdate("INSERT INTO " + table + " VALUES (-1, 'committed')");
      c.commit();
      st.executeUpdate("INSERT INTO " + table + " VALUES (-2, 'rolled back')");
      c.rollback();
      st.executeUpdate("INSERT INTO " + table + " VALUES (-3, 'before the savepoint')");
      Savepoint sp = c.setSavepoint();
      st.executeUpdate("INSERT INTO " + table + " VALUES (-4, 'after the savepoint')");
      c.rollback(sp);
      try {
        st.executeUpdate("INSERT INTO " + table + " VALUES (-1, 'duplicate')");
      } catch (SQLException e) {
        c.rollback();  // the error aborted the transaction: -3 goes too
      }
      c.setAutoCommit(true);
      Map<String, Object> r = new LinkedHashMap<>();
      List<Object> ids = new ArrayList<>();
      try (ResultSet rs = st.executeQuery("SELECT id FROM " + table + " WHERE id < 0 ORDER BY id")) {
        while (rs.next()) ids.add(rs.getInt(1));
      }
      r.put("negative_ids", ids);
      return r;
    }
  }

  // With autocommit off and a fetch size, pgJDBC reads through a portal,
  // Execute with a row limit, PortalSuspended, Execute again.
  static Map<String, Object> fetchSize(Connection c) throws Exception {
    c.setAutoCommit(false);
    long rows = 0, sum = 0;
    MessageDigest sha = MessageDigest.getInstance("SHA-256");
    try (Statement st = c.createStatement()) {
      st.setFetchSize(100);
      try (ResultSet rs = st.executeQuery("SELECT g, md5(g::text) FROM generate_series(1, " + FETCH_ROWS + ") g")) {
        while (rs.next()) {
          ++rows;
          sum += rs.getLong(1);
          sha.update(rs.getString(2).getBytes(StandardCharsets.UTF_8));
        }
      }
    }
    c.commit();
    c.setAutoCommit(true);
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("rows", rows);
    r.put("sum", sum);
    r.put("sha256", HexFormat.of().formatHex(sha.digest()));
    return r;
  }

  static String copyValue(int i) {
    return "row " + i + "\\tcopied\\\\ \u00e9\u4e2d";  // COPY text escapes: a tab and a backslash
  }

  static Map<String, Object> copy(Connection c, String table, int rows) throws Exception {
    StringBuilder in = new StringBuilder();
    for (int i = 1; i <= rows; ++i) in.append(10000 + i).append('\t').append(copyValue(i)).append('\n');
    CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
    long copiedIn = cm.copyIn("COPY " + table + " (id, v) FROM STDIN", new StringReader(in.toString()));
    StringWriter outText = new StringWriter();
    long copiedOut = cm.copyOut("COPY (SELECT id, v FROM " + table + " WHERE id > 10000 ORDER BY id) TO STDOUT", outText);
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("in", copiedIn);
    r.put("out", copiedOut);
    r.put("round_trip", outText.toString().equals(in.toString()));
    r.put("value", one(c, "SELECT v FROM " + table + " WHERE id = 10001"));
    return r;
  }

  // Statement.cancel() sends a CancelRequest to where the connection went,
  // with the key the connection was given.
  static Map<String, Object> cancel(Connection c) throws Exception {
    Map<String, Object> r = new LinkedHashMap<>();
    try (Statement st = c.createStatement()) {
      Thread canceller = new Thread(() -> {
        try {
          Thread.sleep(500);
          st.cancel();
        } catch (Exception ignored) {
          // the statement then runs to its end and the check below fails
        }
      });
      long start = System.nanoTime();
      canceller.start();
      try {
        st.execute("SELECT pg_sleep(30)");
        r.put("sqlstate", null);
      } catch (SQLException e) {
        r.put("sqlstate", e.getSQLState());
      }
      canceller.join();
      r.put("seconds", Math.round((System.nanoTime() - start) / 1e8) / 10.0);
    }
    r.put("usable_after_cancel", one(c, "SELECT 'after cancel'"));
    return r;
  }

  static Map<String, Object> metadata(Connection c, String table) throws SQLException {
    DatabaseMetaData md = c.getMetaData();
    Map<String, Object> r = new LinkedHashMap<>();
    List<Object> tables = new ArrayList<>();
    try (ResultSet rs = md.getTables(null, "public", table, new String[] {"TABLE"})) {
      while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
    }
    List<Object> columns = new ArrayList<>();
    try (ResultSet rs = md.getColumns(null, "public", table, null)) {
      while (rs.next()) columns.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
    }
    List<Object> keys = new ArrayList<>();
    try (ResultSet rs = md.getPrimaryKeys(null, "public", table)) {
      while (rs.next()) keys.add(rs.getString("COLUMN_NAME"));
    }
    r.put("tables", tables);
    r.put("columns", columns);
    r.put("primary_key", keys);
    return r;
  }

  static Map<String, Object> types(Connection c) throws SQLException {
    byte[] bytes = {0, 1, (byte) 0xff, 'x'};
    Timestamp ts = Timestamp.valueOf("2024-02-29 12:34:56.789");
    BigDecimal dec = new BigDecimal("12345.6789");
    Map<String, Object> r = new LinkedHashMap<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT ?::bytea, ?::timestamp, ?::numeric, ?::int[], ?::text")) {
      Array arr = c.createArrayOf("int4", new Integer[] {1, 2, 3});
      for (int i = 0; i < 6; ++i) {  // past prepareThreshold too: binary results
        ps.setBytes(1, bytes);
        ps.setTimestamp(2, ts);
        ps.setBigDecimal(3, dec);
        ps.setArray(4, arr);
        ps.setString(5, null);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          r.put("bytea", Arrays.equals(rs.getBytes(1), bytes));
          r.put("timestamp", ts.equals(rs.getTimestamp(2)));
          r.put("numeric", dec.compareTo(rs.getBigDecimal(3)) == 0);
          r.put("array", Arrays.equals((Integer[]) rs.getArray(4).getArray(), new Integer[] {1, 2, 3}));
          r.put("null", rs.getString(5) == null && rs.wasNull());
        }
      }
    }
    return r;
  }

  static Map<String, Object> denied(Connection c, String sql) throws SQLException {
    Map<String, Object> r = new LinkedHashMap<>();
    try (Statement st = c.createStatement()) {
      st.execute(sql);
      r.put("sqlstate", null);
    } catch (SQLException e) {
      r.put("sqlstate", e.getSQLState());
      ServerErrorMessage server = e instanceof PSQLException p ? p.getServerErrorMessage() : null;
      r.put("message", server != null ? server.getMessage() : e.getMessage());
    }
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.execute();
      r.put("prepared_sqlstate", null);
    } catch (SQLException e) {
      r.put("prepared_sqlstate", e.getSQLState());
    }
    r.put("usable_after", one(c, "SELECT 'usable'"));
    return r;
  }

  // A JSON writer for the few kinds of values above.
  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof String s) {
      StringBuilder b = new StringBuilder("\"");
      for (char ch : s.toCharArray()) {
        switch (ch) {
          case '"' -> b.append("\\\"");
          case '\\' -> b.append("\\\\");
          case '\n' -> b.append("\\n");
          case '\t' -> b.append("\\t");
          default -> {
            // ASCII only, so the C locale's stdout encoding cannot change a character
            if (ch < 0x20 || ch > 0x7e) b.append(String.format("\\u%04x", (int) ch));
            else b.append(ch);
          }
        }
      }
      return b.append('"').toString();
    }
    if (v instanceof Map<?, ?> m) {
      StringBuilder b = new StringBuilder("{");
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (b.length() > 1) b.append(',');
        b.append(json(e.getKey().toString())).append(':').append(json(e.getValue()));
      }
      return b.append('}').toString();
    }
    if (v instanceof List<?> l) {
      StringBuilder b = new StringBuilder("[");
      for (Object o : l) {
        if (b.length() > 1) b.append(',');
        b.append(json(o));
      }
      return b.append(']').toString();
    }
    return v.toString();  // numbers and booleans
  }
}
