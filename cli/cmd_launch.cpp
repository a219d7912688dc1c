// `medfm launch -n N [--port P] -- medfm pretrain ...`: N processes on this machine with the
// variables torchrun sets (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE); the first that fails stops the others; exit status: the first failure's.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/error.h"

namespace medfm::cli {

namespace {

std::vector<pid_t> g_children;

void forward_signal(int sig) {
  for (pid_t p : g_children) ::kill(p, sig);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  MEDFM_CHECK_T(IoError, fd >= 0, "launch: cannot open a socket: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  MEDFM_CHECK_T(IoError, ok, "launch: cannot find a free port: ", std::strerror(errno));
  return ntohs(a.sin_port);
}

std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "medfm";
}

}  // namespace

void add_launch_command(CLI::App& app, int* rc) {
  struct State {
    int n = 2, port = 0;
    std::string addr = "127.0.0.1";
    std::vector<std::string> command;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("launch", "run N data-parallel processes on this machine (as torchrun does)");
  cmd->add_option("-n,--nproc", s->n, "processes")->check(CLI::Range(1, 256));
  cmd->add_option("--port", s->port, "MASTER_PORT (default: a free port)");
  cmd->add_option("--master-addr", s->addr, "MASTER_ADDR");
  cmd->add_option("command", s->command, "the command after --, e.g. -- medfm pretrain --config ...")->required();
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      std::vector<std::string> args = s->command;
      if (args[0] == "medfm") args[0] = self_exe();  // the same build as this launcher
      const int port = s->port > 0 ? s->port : free_port();
      std::cerr << "launch: " << s->n << " processes, MASTER_ADDR=" << s->addr << " MASTER_PORT=" << port << "\n";
      struct sigaction sa{};
      sa.sa_handler = forward_signal;
      ::sigaction(SIGINT, &sa, nullptr);
      ::sigaction(SIGTERM, &sa, nullptr);
      for (int r = 0; r < s->n; ++r) {
        const pid_t pid = ::fork();
        MEDFM_CHECK_T(IoError, pid >= 0, "launch: fork failed: ", std::strerror(errno));
        if (pid == 0) {
          ::setenv("MASTER_ADDR", s->addr.c_str(), 1);
          ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
          ::setenv("RANK", std::to_string(r).c_str(), 1);
          ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
          ::setenv("WORLD_SIZE", std::to_string(s->n).c_str(), 1);
          ::setenv("LOCAL_WORLD_SIZE", std::to_string(s->n).c_str(), 1);
          std::vector<char*> av;
          for (auto& a : args) av.push_back(a.data());
          av.push_back(nullptr);
          ::execvp(av[0], av.data());
          std::cerr << "launch: cannot run '" << args[0] << "': " << std::strerror(errno) << "\n";
          ::_exit(127);
        }
        g_children.push_back(pid);
      }
      int first_failure = 0;
      size_t left = g_children.size();
      while (left > 0) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0) {
          if (errno == EINTR) continue;
          break;
        }
        --left;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        if (code != 0 && first_failure == 0) {
          first_failure = code;
          std::cerr << "launch: a process exited with " << code << "; stopping the others\n";
          forward_signal(SIGTERM);
        }
      }
      return first_failure;
    });
  });
}

}  // namespace medfm::cli
