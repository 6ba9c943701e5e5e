// A driver program for multi_driver_test: joins the cluster given by
// --ray_address (other --ray_* flags apply too) and runs one sub-command.
// Results go to stdout, one line each, flushed at once; commands that wait
// for the test read lines from stdin and exit when it closes.
//
//   driver --ray_address=HOST:PORT [--ray_*=...] COMMAND [ARGS...]
//
//   create-named NAME NAMESPACE [hold]  a Counter named NAME in NAMESPACE;
//                                       "created PID", then (hold) waits for
//                                       stdin to close
//   get-named NAME [NAMESPACE]          "found N" after adding 1 to the named
//                                       Counter, or "not-found"
//   block DIR                           tasks that never end (one of them
//                                       nested), an actor and a 1 MiB put;
//                                       "ready JOB_ID ACTOR_PID" once the
//                                       tasks run, then waits
//   call-lib                            calls functions that live in the code
//                                       search path's library (see
//                                       remote_lib.cc); "where ..." and
//                                       "not-found-error ..."
//   store-refs                          puts, passes and nests 1 MiB objects,
//                                       then drops them step by step; each
//                                       step waits for a line on stdin
//   hold-put                            puts a 1 MiB object; "put ID_HEX
//                                       OWNER_ADDRESS"; on a line, reads it:
//                                       "read N" (its size) or "error ...";
//                                       then waits for stdin to close
//   dead-borrower                       lends a 1 MiB put to an actor that
//                                       keeps it and drops its own ref
//                                       ("lent"); on a line, kills the actor
//                                       ("killed"), then waits for stdin to close
//   where N [OPTION...]                 N tasks at once, each sleeping 300 ms,
//                                       then one line per task in order: "ran
//                                       NODE_ID" or "error MESSAGE". Options:
//                                       sleep MS; spread; affinity NODE_ID hard|soft;
//                                       label KEY VALUE; resource NAME AMOUNT;
//                                       actor (one actor per task instead,
//                                       asked for its node)
//   transfer MIB NODE_ID                objects of MIB MiB across nodes, each
//                                       line its size as read: "result N" (a
//                                       task on NODE_ID made it), "arg N" (a
//                                       put read by a task there), "borrowed
//                                       N" (put by a task there, read here)
//   lose NODE_ID PID_FILE [COPY_NODE]   a task on NODE_ID makes a 6 MiB result;
//                                       once it is ready (and, with COPY_NODE,
//                                       read by a task there: "copied N"),
//                                       kills the process in PID_FILE (that
//                                       node's daemon) and reads the result:
//                                       "read N" or "lost MESSAGE"
//   pg STRATEGY N CPUS WAIT [remove]    a placement group of N bundles of
//                                       CPUS CPUs: "ready true|false" after
//                                       Wait(WAIT); if ready, a task and an
//                                       actor in each bundle ("bundle I task
//                                       NODE", "bundle I actor NODE"); with
//                                       remove, a long task and an actor in
//                                       bundle 0, then the group removed:
//                                       "removed task|actor|after error ..."
//                                       and "freed ran NODE"
//
// The node starts this same binary (with the same command line) as a
// worker, so ray::Init comes first: in a worker it never returns.
#include <ray/api.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kMiB = 1u << 20;

class Counter {
 public:
  static Counter *Create() { return new Counter(); }
  int Add(int x) { return value_ += x; }
  int Pid() { return static_cast<int>(getpid()); }

 private:
  int value_ = 0;
};

RAY_REMOTE(Counter::Create, &Counter::Add, &Counter::Pid);

// Where it runs (for `where`).
class Locator {
 public:
  static Locator *Create() { return new Locator(); }
  std::string Node() { return ray::GetRuntimeContext().GetNodeId(); }
};

RAY_REMOTE(Locator::Create, &Locator::Node);

// Borrows the refs it is given for as long as it lives.
class Keeper {
 public:
  static Keeper *Create() { return new Keeper(); }
  size_t Keep(std::vector<ray::ObjectRef<std::string>> refs) {
    kept_ = std::move(refs);
    return kept_.size();
  }

 private:
  std::vector<ray::ObjectRef<std::string>> kept_;
};

RAY_REMOTE(Keeper::Create, &Keeper::Keep);

// Records its pid as DIR/sleeper-PID, then sleeps until its worker is killed.
int Sleeper(std::string dir) {
  std::ofstream(dir + "/sleeper-" + std::to_string(getpid())) << getpid();
  for (;;) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// Waits for a nested Sleeper, so its worker is blocked in Get.
int Nester(std::string dir) { return *ray::Task(Sleeper).Remote(dir).Get(); }

size_t Length(std::string data) { return data.size(); }

std::string MakeBlob(int mib) { return std::string(static_cast<size_t>(mib) << 20, 'm'); }

// A 1 MiB object owned by the worker, returned inside the result.
std::vector<ray::ObjectRef<std::string>> PutBlobInside(int mib) {
  return {ray::Put(std::string(static_cast<size_t>(mib) << 20, 'w'))};
}

size_t TotalLength(std::vector<ray::ObjectRef<std::string>> refs) {
  size_t total = 0;
  for (auto &ref : refs) total += ref.Get()->size();
  return total;
}

// Stand-ins for remote_lib.cc's functions: the driver names them by these
// registered names; with a code search path the workers run the library's
// versions. NotInLib exists only here.
std::string WhereAmI() { return "driver"; }
std::string NotInLib() { return "driver"; }

// Sleeps, then says which node it ran on.
std::string NodeAfter(int sleep_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  return ray::GetRuntimeContext().GetNodeId();
}

RAY_REMOTE(Sleeper, Nester, Length, MakeBlob, PutBlobInside, TotalLength, WhereAmI, NotInLib,
           NodeAfter);

void Say(const std::string &line) { std::cout << line << std::endl; }

// Waits for the next line on stdin; false once stdin is closed.
bool NextLine() {
  std::string line;
  return static_cast<bool>(std::getline(std::cin, line));
}

void WaitForStdinToClose() {
  while (NextLine()) {
  }
}

int CreateNamed(const std::vector<std::string> &args) {
  if (args.size() < 2) return 2;
  auto counter = ray::Actor(Counter::Create).SetName(args[0], args[1]).Remote();
  Say("created " + std::to_string(*counter.Task(&Counter::Pid).Remote().Get()));
  if (args.size() > 2 && args[2] == "hold") WaitForStdinToClose();
  return 0;
}

int GetNamed(const std::vector<std::string> &args) {
  if (args.empty()) return 2;
  auto counter =
      args.size() > 1 ? ray::GetActor<Counter>(args[0], args[1]) : ray::GetActor<Counter>(args[0]);
  if (!counter) {
    Say("not-found");
    return 0;
  }
  Say("found " + std::to_string(*counter->Task(&Counter::Add).Remote(1).Get()));
  return 0;
}

int Block(const std::vector<std::string> &args) {
  if (args.empty()) return 2;
  const std::string dir = args[0];
  auto actor = ray::Actor(Counter::Create).Remote();
  const int actor_pid = *actor.Task(&Counter::Pid).Remote().Get();
  auto sleeping = ray::Task(Sleeper).Remote(dir);
  auto nesting = ray::Task(Nester).Remote(dir);
  auto held = ray::Put(std::string(kMiB, 'h'));  // in the node store
  // Both Sleepers (the direct one and the nested one) have started.
  for (;;) {
    int started = 0;
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
      started += entry.path().filename().string().rfind("sleeper-", 0) == 0;
    }
    if (started >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Say("ready " + ray::GetRuntimeContext().GetJobId() + " " + std::to_string(actor_pid));
  WaitForStdinToClose();
  return 0;
}

int CallLib() {
  Say("where " + *ray::Task(WhereAmI).Remote().Get());
  try {
    ray::Task(NotInLib).Remote().Get();
    Say("not-found-error none");
  } catch (const ray::internal::RayFunctionNotFound &e) {
    std::string message = e.what();
    for (char &c : message) c = c == '\n' ? ' ' : c;
    Say("not-found-error " + message);
  }
  return 0;
}

int StoreRefs() {
  // Puts passed to tasks by reference and nested inside a put value.
  std::vector<ray::ObjectRef<std::string>> blobs;
  for (int i = 0; i < 4; ++i) blobs.push_back(ray::Put(std::string(kMiB, 'a' + i)));
  ray::ObjectRef<std::string> keep = ray::Put(std::string(kMiB, 'k'));
  size_t total = 0;
  for (auto &blob : blobs) total += *ray::Task(Length).Remote(blob).Get();
  auto nested = ray::Put(std::vector<ray::ObjectRef<std::string>>{blobs[0], blobs[1]});
  total += *ray::Task(TotalLength).Remote(nested).Get();
  // A task's 1 MiB result, and a worker-owned 1 MiB object returned inside
  // a value (the driver borrows it).
  auto made = ray::Task(MakeBlob).Remote(1);
  total += ray::Get(made)->size();
  auto inside = *ray::Task(PutBlobInside).Remote(1).Get();
  total += *ray::Task(TotalLength).Remote(inside).Get();
  Say("holding " + std::to_string(total / kMiB));
  if (!NextLine()) return 1;

  blobs.clear();
  nested = ray::ObjectRef<std::vector<ray::ObjectRef<std::string>>>();
  made = ray::ObjectRef<std::string>();
  inside.clear();
  Say("dropped");
  if (!NextLine()) return 1;

  // The held object is still there, for the driver and for a task.
  Say("kept " + std::to_string(keep.Get()->size()) + " " +
      std::to_string(*ray::Task(Length).Remote(keep).Get()));
  if (!NextLine()) return 1;
  keep = ray::ObjectRef<std::string>();
  Say("released");
  if (!NextLine()) return 1;
  return 0;
}

std::string Hex(const std::string &binary) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : binary) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

int HoldPut() {
  auto held = ray::Put(std::string(kMiB, 'p'));
  // A serialized ref is [id, owner address] (docs/architecture.md).
  auto packed = ray::internal::Serializer::Serialize(held);
  auto unpacked = msgpack::unpack(packed.data(), packed.size());
  auto fields = unpacked.get().as<std::vector<msgpack::type::raw_ref>>();
  Say("put " + Hex(held.ID()) + " " + std::string(fields.at(1).ptr, fields.at(1).size));
  if (!NextLine()) return 1;
  Say("read " + std::to_string(held.Get()->size()));
  WaitForStdinToClose();
  return 0;
}

int DeadBorrower() {
  auto keeper = ray::Actor(Keeper::Create).Remote();
  {
    auto blob = ray::Put(std::string(kMiB, 'b'));
    keeper.Task(&Keeper::Keep).Remote(std::vector<ray::ObjectRef<std::string>>{blob}).Get();
  }
  Say("lent");
  if (!NextLine()) return 1;
  keeper.Kill(true);
  Say("killed");
  WaitForStdinToClose();
  return 0;
}

int Transfer(const std::vector<std::string> &args) {
  if (args.size() < 2) return 2;
  const int mib = std::stoi(args[0]);
  const ray::NodeAffinitySchedulingStrategy there{args[1], false};
  auto made = ray::Task(MakeBlob).SetSchedulingStrategy(there).Remote(mib);
  Say("result " + std::to_string(made.Get()->size()));
  auto put = ray::Put(std::string(static_cast<size_t>(mib) << 20, 'p'));
  Say("arg " + std::to_string(*ray::Task(Length).SetSchedulingStrategy(there).Remote(put).Get()));
  auto inside = ray::Task(PutBlobInside).SetSchedulingStrategy(there).Remote(mib);
  std::vector<ray::ObjectRef<std::string>> refs = *inside.Get();
  Say("borrowed " + std::to_string(refs.at(0).Get()->size()));
  return 0;
}

int Lose(const std::vector<std::string> &args) {
  if (args.size() < 2) return 2;
  auto made = ray::Task(MakeBlob)
                  .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{args[0], false})
                  .Remote(6);
  std::vector<ray::ObjectRef<std::string>> refs = {made};
  if (ray::Wait(refs, 1, 30000).ready.size() != 1) return 1;
  if (args.size() > 2) {
    // A task on that node reads it: its node pulls a copy, and the owner
    // hears where.
    auto length = ray::Task(Length)
                      .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{args[2], false})
                      .Remote(made);
    Say("copied " + std::to_string(*length.Get()));
  }
  std::ifstream pid_file(args[1]);
  pid_t pid = 0;
  if (!(pid_file >> pid) || pid <= 0 || kill(pid, SIGKILL) != 0) return 1;
  try {
    Say("read " + std::to_string(made.Get()->size()));
  } catch (const std::exception &e) {
    Say("lost " + std::string(e.what()));
  }
  return 0;
}

int PlacementGroupRun(const std::vector<std::string> &args) {
  if (args.size() < 4) return 2;
  const std::map<std::string, ray::PlacementStrategy> strategies = {
      {"PACK", ray::PlacementStrategy::PACK},
      {"SPREAD", ray::PlacementStrategy::SPREAD},
      {"STRICT_PACK", ray::PlacementStrategy::STRICT_PACK},
      {"STRICT_SPREAD", ray::PlacementStrategy::STRICT_SPREAD}};
  if (!strategies.contains(args[0])) return 2;
  const int count = std::stoi(args[1]);
  const double cpus = std::stod(args[2]);
  ray::PlacementGroupCreationOptions options;
  options.name = "pg-test";
  options.strategy = strategies.at(args[0]);
  for (int i = 0; i < count; ++i) options.bundles.push_back({{"CPU", cpus}});
  ray::PlacementGroup group = ray::CreatePlacementGroup(options);
  const bool ready = group.Wait(std::stoi(args[3]));
  Say(std::string("ready ") + (ready ? "true" : "false"));
  if (!ready) return 0;
  for (int i = 0; i < count; ++i) {
    auto task = ray::Task(NodeAfter).SetPlacementGroup(group, i).SetResource("CPU", cpus);
    Say("bundle " + std::to_string(i) + " task " + *task.Remote(0).Get());
    auto actor = ray::Actor(Locator::Create).SetPlacementGroup(group, i).Remote();
    Say("bundle " + std::to_string(i) + " actor " + *actor.Task(&Locator::Node).Remote().Get());
  }
  if (args.size() < 5 || args[4] != "remove") return 0;
  auto long_task =
      ray::Task(NodeAfter).SetPlacementGroup(group, 0).SetResource("CPU", cpus).Remote(60000);
  auto actor = ray::Actor(Locator::Create).SetPlacementGroup(group, 0).Remote();
  actor.Task(&Locator::Node).Remote().Get();  // it runs
  ray::RemovePlacementGroup(group.GetID());
  auto report = [](const std::string &what, auto &&get) {
    try {
      Say("removed " + what + " ran " + *get());
    } catch (const std::exception &e) {
      Say("removed " + what + " error " + std::string(e.what()));
    }
  };
  report("task", [&] { return long_task.Get(); });
  // The actor's worker is stopped soon after the removal returns (control
  // kills it asynchronously): calls succeed until then.
  report("actor", [&] {
    for (int i = 0; i < 100; ++i) {
      actor.Task(&Locator::Node).Remote().Get();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return actor.Task(&Locator::Node).Remote().Get();
  });
  report("after", [&] { return ray::Task(NodeAfter).SetPlacementGroup(group, 0).Remote(0).Get(); });
  // Every bundle's CPUs are free again: a task holding them all runs.
  Say("freed ran " + *ray::Task(NodeAfter).SetResource("CPU", cpus).Remote(0).Get());
  return 0;
}

int Where(const std::vector<std::string> &args) {
  if (args.empty()) return 2;
  const int count = std::stoi(args[0]);
  ray::SchedulingStrategy strategy;
  ray::LabelSelector labels;
  std::unordered_map<std::string, double> resources;
  bool actors = false;
  int sleep_ms = 300;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "sleep" && i + 1 < args.size()) {
      sleep_ms = std::stoi(args[++i]);
    } else if (args[i] == "spread") {
      strategy = ray::SpreadSchedulingStrategy{};
    } else if (args[i] == "affinity" && i + 2 < args.size()) {
      strategy = ray::NodeAffinitySchedulingStrategy{args[i + 1], args[i + 2] == "soft"};
      i += 2;
    } else if (args[i] == "label" && i + 2 < args.size()) {
      labels[args[i + 1]] = args[i + 2];
      i += 2;
    } else if (args[i] == "resource" && i + 2 < args.size()) {
      resources[args[i + 1]] = std::stod(args[i + 2]);
      i += 2;
    } else if (args[i] == "actor") {
      actors = true;
    } else {
      return 2;
    }
  }
  std::vector<ray::ObjectRef<std::string>> nodes;
  std::vector<ray::ActorHandle<Locator>> held;
  for (int i = 0; i < count; ++i) {
    if (actors) {
      auto creator =
          ray::Actor(Locator::Create).SetSchedulingStrategy(strategy).SetLabelSelector(labels);
      for (const auto &[name, amount] : resources) creator.SetResource(name, amount);
      held.push_back(creator.Remote());
      nodes.push_back(held.back().Task(&Locator::Node).Remote());
    } else {
      auto caller = ray::Task(NodeAfter).SetSchedulingStrategy(strategy).SetLabelSelector(labels);
      for (const auto &[name, amount] : resources) caller.SetResource(name, amount);
      nodes.push_back(caller.Remote(sleep_ms));
    }
  }
  for (auto &node : nodes) {
    try {
      Say("ran " + *node.Get());
    } catch (const std::exception &e) {
      Say("error " + std::string(e.what()));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  ray::RayConfig config;
  try {
    ray::Init(config, argc, argv);  // a worker: never returns
  } catch (const std::exception &e) {
    Say("error " + std::string(e.what()));
    return 1;
  }
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind("--", 0) != 0) args.emplace_back(argv[i]);
  }
  if (args.empty()) {
    std::cerr << "usage: driver --ray_address=HOST:PORT COMMAND [ARGS...]\n";
    ray::Shutdown();
    return 2;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  int code = 2;
  try {
    if (command == "create-named") code = CreateNamed(args);
    if (command == "get-named") code = GetNamed(args);
    if (command == "block") code = Block(args);
    if (command == "call-lib") code = CallLib();
    if (command == "store-refs") code = StoreRefs();
    if (command == "dead-borrower") code = DeadBorrower();
    if (command == "hold-put") code = HoldPut();
    if (command == "where") code = Where(args);
    if (command == "transfer") code = Transfer(args);
    if (command == "lose") code = Lose(args);
    if (command == "pg") code = PlacementGroupRun(args);
  } catch (const std::exception &e) {
    std::cerr << "driver " << command << ": " << e.what() << std::endl;
    Say("error " + std::string(e.what()));
    code = 1;
  }
  ray::Shutdown();
  return code;
}
