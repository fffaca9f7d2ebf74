#include <cstdio>
int main() { std::puts("pgwarden " PGWARDEN_VERSION); return 0; }
