#include "commands/people_hash.hpp"

#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "auth/scram.hpp"

namespace pgwarden::commands {

int run_people_hash(int iterations, std::istream& in, std::ostream& out, std::ostream& err) {
  std::string password;
  if (!std::getline(in, password) && password.empty()) {
    err << "error: no password on standard input\n";
    return 1;
  }
  if (password.ends_with('\r')) password.pop_back();
  auto verifier = auth::make_scram_verifier(password, iterations);
  std::fill(password.begin(), password.end(), '\0');
  if (!verifier) {
    err << "error: " << verifier.error().message << ": " << verifier.error().detail << '\n';
    return 1;
  }
  out << verifier->to_string() << '\n';
  return 0;
}

int run_people_hash(int iterations) {
  termios saved{};
  const bool terminal = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (terminal) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::cerr << "Password: " << std::flush;
  }
  const int status = run_people_hash(iterations, std::cin, std::cout, std::cerr);
  if (terminal) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << '\n';
  }
  return status;
}

}  // namespace pgwarden::commands
