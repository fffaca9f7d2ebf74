// pgJDBC's view of its backend: the pid the driver reports
// (PGConnection.getBackendPID, from BackendKeyData), pg_backend_pid(), and
// the pid of a NOTIFY this session sends itself. Driven by
// tests/integration/test_faults.py.
//
// Usage: java -cp /usr/share/java/postgresql.jar BackendPid.java URL USER
// Prints {"driver_pid": N, "backend_pid": N, "notify_pid": N}.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

public class BackendPid {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("connectTimeout", "10");
    try (Connection c = DriverManager.getConnection(args[0], props); Statement s = c.createStatement()) {
      c.setAutoCommit(true);
      PGConnection pg = c.unwrap(PGConnection.class);
      s.execute("LISTEN backend_pid");
      s.execute("NOTIFY backend_pid, 'self'");
      int backend;
      try (ResultSet r = s.executeQuery("SELECT pg_backend_pid()")) {
        r.next();
        backend = r.getInt(1);
      }
      PGNotification[] notes = pg.getNotifications(10000);
      int notifier = notes != null && notes.length > 0 ? notes[0].getPID() : -1;
      System.out.println("{\"driver_pid\": " + pg.getBackendPID() + ", \"backend_pid\": " + backend
          + ", \"notify_pid\": " + notifier + "}");
    }
  }
}
