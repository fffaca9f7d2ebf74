#pragma once
/// The bytes each kind of sink sends for an alert. Pure functions, so that
/// the shape every receiver sees is pinned by unit tests.

#include <string>
#include <string_view>

#include "alerts/alert.hpp"

namespace pgwarden::alerts {

/// The generic webhook's JSON object: every field of the alert by name
/// (kind, severity, summary, time, count, person, user, database,
/// client_addr, application_name, statement, rule, decision, dry_run,
/// session_id, record_hash, detail).
std::string webhook_json(const Alert& a);
/// A Slack-compatible incoming-webhook payload: {"text": ...} with the
/// summary and one line per field a responder needs.
std::string slack_json(const Alert& a);
/// The body of Alertmanager's `POST /api/v2/alerts`: a one-element array
/// with labels (alertname, severity, kind, rule, user, person, database,
/// client, decision; empty ones left out) and annotations (summary,
/// statement, session_id, record_hash, application_name, count, ...).
std::string alertmanager_json(const Alert& a);

/// An RFC 5424 syslog message (no transport framing):
/// `<PRI>1 TIMESTAMP HOSTNAME pgwarden PROCID KIND [pgwarden@32473 ...] SUMMARY`.
/// `facility` 0-23; the severity follows severity(a).
std::string syslog_message(const Alert& a, unsigned facility, std::string_view hostname);
/// RFC 6587 octet counting: "<length> <message>".
std::string octet_counted(std::string_view message);

/// "sha256=<hex HMAC-SHA256(key, body)>", the X-Pgwarden-Signature header.
std::string signature_header(std::string_view key, std::string_view body);

}  // namespace pgwarden::alerts
