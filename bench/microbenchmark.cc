// Sunray's microbenchmark: the workloads of Ray's `ray microbenchmark`,
// reported under the same metric names, one line each: name, rate, unit.
//
//   bench/microbenchmark [--local] [--seconds S] [--repeats R]
//                        [--filter SUBSTRING] [--ray_* flags]
//
// Each workload runs R times for about S seconds; the line shows the median
// rate and, in brackets, the lowest and highest. The runtime is a cluster
// (an embedded one unless --ray_address is given); --local measures local
// mode, whose numbers are NOT comparable with Ray's cluster figures (no
// processes, no shared memory: see docs/benchmarks.md).
#include <ray/api.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

void Noop() {}
int Identity(int x) { return x; }
int TakesArray(const std::vector<uint8_t> &value) { return static_cast<int>(value.size()); }
int SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
RAY_REMOTE(Noop, Identity, TakesArray, SleepMs);

class Actor {
 public:
  static Actor *Create() { return new Actor(); }
  void Noop() {}
  int WithArg(const std::vector<uint8_t> &value) { return static_cast<int>(value.size()); }
};
RAY_REMOTE(Actor::Create, &Actor::Noop, &Actor::WithArg);

struct Options {
  double seconds = 2.0;
  int repeats = 3;
  std::string filter;
};

using Clock = std::chrono::steady_clock;

// Runs `batch` (which performs and returns a number of operations) until
// `seconds` have passed; returns operations per second.
double MeasureRate(double seconds, const std::function<double()> &batch) {
  batch();  // warm up
  const auto start = Clock::now();
  double operations = 0;
  double elapsed = 0;
  do {
    operations += batch();
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return operations / elapsed;
}

void Report(const Options &options, const std::string &name, const std::string &unit,
            const std::function<double()> &batch) {
  if (!options.filter.empty() && name.find(options.filter) == std::string::npos) return;
  std::vector<double> rates;
  for (int i = 0; i < options.repeats; ++i) rates.push_back(MeasureRate(options.seconds, batch));
  std::sort(rates.begin(), rates.end());
  std::cout << std::left << std::setw(48) << name << std::right << std::fixed
            << std::setprecision(2) << std::setw(14) << rates[rates.size() / 2] << " " << unit
            << "  [" << rates.front() << " .. " << rates.back() << "]" << std::endl;
}

// Returns make(0) .. make(n - 1), each move-assigned into its slot. Not
// push_back(make(i)): Ray's ObjectRef<T> move constructor drops the reference
// before taking it again, which frees an object whose only reference was the
// temporary (a ray::Put's result, a finished task's return value), and a
// later Get or Wait of it never returns. Move assignment is safe in both.
template <typename Make>
auto MakeRefs(int n, const Make &make) -> std::vector<decltype(make(0))> {
  std::vector<decltype(make(0))> refs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) refs[static_cast<size_t>(i)] = make(i);
  return refs;
}

// Runs `work` on `threads` threads at once; returns the sum of their counts.
double OnThreads(int threads, const std::function<double()> &work) {
  std::vector<std::thread> pool;
  std::vector<double> counts(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] { counts[static_cast<size_t>(i)] = work(); });
  }
  for (auto &thread : pool) thread.join();
  double total = 0;
  for (double count : counts) total += count;
  return total;
}

}  // namespace

int main(int argc, char **argv) {
  Options options;
  bool local = false;
  // Our own flags are taken out of what ray::Init sees: Ray's C++ API aborts
  // on flags it does not know (Sunray leaves them alone), and the same source
  // builds against both (bench/ray_compare.py).
  std::vector<char *> ray_args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--local") == 0) {
      local = true;
    } else if (has_value && std::strcmp(argv[i], "--seconds") == 0) {
      options.seconds = std::stod(argv[++i]);
    } else if (has_value && std::strcmp(argv[i], "--repeats") == 0) {
      options.repeats = std::stoi(argv[++i]);
    } else if (has_value && std::strcmp(argv[i], "--filter") == 0) {
      options.filter = argv[++i];
    } else {
      ray_args.push_back(argv[i]);
    }
  }
  ray_args.push_back(nullptr);
  ray::RayConfig config;
  config.local_mode = local;
  // Workers run this binary too: there Init never returns.
  ray::Init(config, static_cast<int>(ray_args.size()) - 1, ray_args.data());
  const int clients = std::max(2u, std::thread::hardware_concurrency());
  std::cout << "# runtime: "
            << (ray::internal::GetRayRuntime()->IsLocalMode() ? "local mode" : "cluster") << ", "
            << std::thread::hardware_concurrency() << " hardware threads, " << options.repeats
            << " runs of " << options.seconds << " s each (median [min .. max])\n";

  // Long tasks' makespan: 4 x CPUs tasks of 1 s submitted at once, first
  // with the workers cold (this runs first). Ideal: 4 s. Not one of Ray's
  // names; the embedded cluster has one CPU per hardware thread.
  if (options.filter.empty() ||
      std::string("long_tasks_makespan").find(options.filter) != std::string::npos) {
    const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<double> makespans;
    for (int run = 0; run < options.repeats; ++run) {
      const auto start = Clock::now();
      auto refs = MakeRefs(4 * cpus, [](int) { return ray::Task(SleepMs).Remote(1000); });
      for (auto &ref : refs) ref.Get();
      makespans.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    const double first = makespans.front();
    std::sort(makespans.begin(), makespans.end());
    std::cout << std::left << std::setw(48)
              << "long_tasks_makespan (" + std::to_string(4 * cpus) + " x 1 s)" << std::right
              << std::fixed << std::setprecision(2) << std::setw(14)
              << makespans[makespans.size() / 2] << " s  [" << makespans.front() << " .. "
              << makespans.back() << "], cold " << first << " s, ideal 4 s" << std::endl;
  }

  Report(options, "single_client_tasks_sync", "tasks/s", [] {
    for (int i = 0; i < 100; ++i) ray::Task(Noop).Remote().Get();
    return 100.0;
  });
  Report(options, "single_client_tasks_async", "tasks/s", [] {
    ray::Get(MakeRefs(1000, [](int i) { return ray::Task(Identity).Remote(i); }));
    return 1000.0;
  });
  Report(options, "multi_client_tasks_async", "tasks/s", [clients] {
    return OnThreads(clients, [] {
      ray::Get(MakeRefs(1000, [](int i) { return ray::Task(Identity).Remote(i); }));
      return 1000.0;
    });
  });

  auto actor = ray::Actor(Actor::Create).Remote();
  Report(options, "1_1_actor_calls_sync", "calls/s", [&] {
    for (int i = 0; i < 100; ++i) actor.Task(&Actor::Noop).Remote().Get();
    return 100.0;
  });
  Report(options, "1_1_actor_calls_async", "calls/s", [&] {
    std::vector<ray::ObjectRef<void>> refs;
    for (int i = 0; i < 1000; ++i) refs.push_back(actor.Task(&Actor::Noop).Remote());
    for (auto &ref : refs) ref.Get();
    return 1000.0;
  });
  auto concurrent = ray::Actor(Actor::Create).SetMaxConcurrency(16).Remote();
  Report(options, "1_1_actor_calls_concurrent", "calls/s", [&] {
    std::vector<ray::ObjectRef<void>> refs;
    for (int i = 0; i < 1000; ++i) refs.push_back(concurrent.Task(&Actor::Noop).Remote());
    for (auto &ref : refs) ref.Get();
    return 1000.0;
  });
  std::vector<ray::ActorHandle<Actor>> actors;
  for (int i = 0; i < clients; ++i) actors.push_back(ray::Actor(Actor::Create).Remote());
  Report(options, "1_n_actor_calls_async", "calls/s", [&] {
    std::vector<ray::ObjectRef<void>> refs;
    for (int i = 0; i < 1000; ++i) {
      refs.push_back(actors[static_cast<size_t>(i) % actors.size()].Task(&Actor::Noop).Remote());
    }
    for (auto &ref : refs) ref.Get();
    return 1000.0;
  });
  Report(options, "n_n_actor_calls_async", "calls/s", [&] {
    std::vector<ray::ActorHandle<Actor>> own = actors;
    return OnThreads(clients, [&] {
      static std::atomic<size_t> next{0};
      auto handle = own[next++ % own.size()];
      std::vector<ray::ObjectRef<void>> refs;
      for (int i = 0; i < 1000; ++i) refs.push_back(handle.Task(&Actor::Noop).Remote());
      for (auto &ref : refs) ref.Get();
      return 1000.0;
    });
  });
  auto small_array = ray::Put(std::vector<uint8_t>(1024, 7));
  Report(options, "n_n_actor_calls_with_arg_async", "calls/s", [&] {
    return OnThreads(clients, [&] {
      static std::atomic<size_t> next{0};
      auto handle = actors[next++ % actors.size()];
      ray::Get(
          MakeRefs(1000, [&](int) { return handle.Task(&Actor::WithArg).Remote(small_array); }));
      return 1000.0;
    });
  });

  const std::vector<uint8_t> kilobyte(1024, 1);
  Report(options, "single_client_put_calls_Plasma_Store", "calls/s", [&] {
    for (int i = 0; i < 1000; ++i) ray::Put(kilobyte);
    return 1000.0;
  });
  Report(options, "single_client_get_calls_Plasma_Store", "calls/s", [&] {
    for (int i = 0; i < 1000; ++i) small_array.Get();
    return 1000.0;
  });
  Report(options, "multi_client_put_calls_Plasma_Store", "calls/s", [&] {
    return OnThreads(clients, [&] {
      for (int i = 0; i < 1000; ++i) ray::Put(kilobyte);
      return 1000.0;
    });
  });
  const std::vector<uint8_t> big(256u << 20, 3);
  Report(options, "single_client_put_gigabytes", "GB/s", [&] {
    ray::Put(big);
    return static_cast<double>(big.size()) / 1e9;
  });
  Report(options, "single_client_tasks_and_get_batch", "tasks/s", [] {
    ray::Get(MakeRefs(1000, [](int i) { return ray::Task(Identity).Remote(i); }));
    return 1000.0;
  });
  auto ready = MakeRefs(1000, [](int i) { return ray::Put(i); });
  Report(options, "single_client_wait_1k_refs", "calls/s", [&] {
    ray::Wait(ready, static_cast<int>(ready.size()), -1);
    return 1.0;
  });
  // Ray's placement_group_create/removal: 100 groups of one small bundle
  // created, waited for, removed (its figure counts groups per second).
  Report(options, "placement_group_create/removal", "groups/s", [] {
    constexpr int kGroups = 100;
    std::vector<ray::PlacementGroup> groups;
    groups.reserve(kGroups);
    for (int i = 0; i < kGroups; ++i) {
      ray::PlacementGroupCreationOptions group;
      group.bundles = {{{"CPU", 0.001}}};
      group.strategy = ray::PlacementStrategy::PACK;
      groups.push_back(ray::CreatePlacementGroup(group));
    }
    for (auto &group : groups) {
      if (!group.Wait(30)) {
        std::cerr << "a placement group was not ready within 30 s\n";
        std::exit(1);
      }
    }
    for (auto &group : groups) ray::RemovePlacementGroup(group.GetID());
    return static_cast<double>(kGroups);
  });

  auto many = MakeRefs(10000, [](int i) { return ray::Put(i); });
  auto container = ray::Put(many);
  Report(options, "single_client_get_object_containing_10k_refs", "calls/s", [&] {
    container.Get();
    return 1.0;
  });
  ray::Shutdown();
  return 0;
}
