"""The compatibility matrix's dimensions, what each combination should do,
and the representative slice that runs by default.

A combination is a client, the client's hop to pgwarden, pgwarden's `auth`,
its `upstream.tls`, the server's authentication method for the user and
whether the server has ssl on. Each either works (every operation of the
scenario), is refused by design with pgwarden's own explanation and a
setting that fixes it, or is not possible with that client at all (direct
TLS needs a client that has it).
"""

from __future__ import annotations

import dataclasses
import itertools
import os

CLIENTS = ["psql", "psycopg", "asyncpg", "node-postgres", "pgjdbc"]
HOPS = ["plaintext", "require", "verify-full", "direct"]
AUTHS = ["passthrough", "scram-auth_file", "scram-auth_query"]
UPSTREAM_TLS = ["disable", "prefer", "require", "verify-full"]
SERVER_AUTHS = ["trust", "md5", "scram-sha-256"]
SERVER_SSL = ["ssl-on", "ssl-off"]
DIMENSIONS = {"client": CLIENTS, "hop": HOPS, "auth": AUTHS, "upstream": UPSTREAM_TLS,
              "server_auth": SERVER_AUTHS, "ssl": SERVER_SSL}

# Clients that speak SCRAM with libpq's channel-binding logic: over TLS they
# bind to the certificate they see (pgwarden's) or send gs2 flag 'y', so
# relayed SCRAM cannot cross two TLS hops. asyncpg and node-postgres (without
# enableChannelBinding) send flag 'n', which the server accepts.
LIBPQ_CLIENTS = {"psql", "psycopg"}
# Clients without direct TLS (PostgreSQL 17's sslnegotiation=direct), and why.
NO_DIRECT_TLS = {
    "psql": "psql 15 (libpq 15) has no direct TLS (sslnegotiation=direct is libpq 17+)",
    "psycopg": "psycopg on libpq 15 has no direct TLS (sslnegotiation=direct is libpq 17+)",
    "pgjdbc": "pgJDBC 42.5 has no direct TLS (sslNegotiation=direct is pgJDBC 42.7.4+)",
}


@dataclasses.dataclass(frozen=True)
class Combo:
    client: str
    hop: str
    auth: str
    upstream: str
    server_auth: str
    ssl: str

    @property
    def id(self) -> str:
        return "-".join(dataclasses.astuple(self))

    def but(self, **changes) -> "Combo":
        return dataclasses.replace(self, **changes)

    @property
    def upstream_tls_in_use(self) -> bool:
        return self.ssl == "ssl-on" and self.upstream != "disable"


@dataclasses.dataclass(frozen=True)
class Expectation:
    """outcome: works, refused or unsupported. A refusal names what
    pgwarden's error says (`says`: every one of these is in it), the setting
    that fixes it (`fix`, in words) and the combination with that setting
    (`fixed`), which works."""
    outcome: str
    says: tuple[str, ...] = ()
    fix: str = ""
    fixed: Combo | None = None


def expect(c: Combo) -> Expectation:
    if c.hop == "direct" and c.client in NO_DIRECT_TLS:
        return Expectation("unsupported", says=(NO_DIRECT_TLS[c.client],))
    if c.ssl == "ssl-off" and c.upstream in ("require", "verify-full"):
        return Expectation("refused", says=(f"the server does not accept TLS connections (upstream.tls: {c.upstream})",),
                           fix="upstream.tls: prefer (or ssl = on in the server)", fixed=c.but(upstream="prefer"))
    if (c.auth == "passthrough" and c.server_auth == "scram-sha-256" and c.upstream_tls_in_use
            and c.client in LIBPQ_CLIENTS):
        if c.hop != "plaintext":
            return Expectation("refused", says=("pgwarden cannot relay SCRAM authentication when both the client "
                                                "and the server connection use TLS", 'Configure "auth: scram"'),
                               fix="auth: scram (with auth_file or auth_query)", fixed=c.but(auth="scram-auth_file"))
        # The server offers SCRAM-SHA-256-PLUS on its TLS link; relayed to a
        # plaintext client, libpq refuses it unless pgwarden filters it out
        # (fault 1 of issue 16).
        return Expectation("works")
    return Expectation("works")


def full() -> list[Combo]:
    return [Combo(*values) for values in itertools.product(*DIMENSIONS.values())]


def pairwise(dimensions: dict[str, list[str]]) -> list[Combo]:
    """A deterministic greedy cover of every pair of values of every two
    dimensions: each new combination is the one of all that covers the most
    pairs not yet covered (ties: the earliest in product order)."""
    names = list(dimensions)
    candidates = list(itertools.product(*dimensions.values()))

    def pairs(values):
        return {(i, values[i], j, values[j]) for i, j in itertools.combinations(range(len(names)), 2)}

    uncovered = set().union(*(pairs(v) for v in candidates))
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda v: len(pairs(v) & uncovered))
        chosen.append(Combo(*best))
        uncovered -= pairs(best)
    return chosen


def selected() -> tuple[str, list[Combo]]:
    """PGWARDEN_MATRIX=full: every combination; otherwise the pairwise slice."""
    mode = os.environ.get("PGWARDEN_MATRIX", "slice")
    if mode not in ("slice", "full"):
        raise ValueError(f"PGWARDEN_MATRIX must be slice or full, not {mode!r}")
    return mode, full() if mode == "full" else pairwise(DIMENSIONS)
