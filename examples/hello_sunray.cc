// A first Sunray program: tasks, actors, and put/get/wait.
//
// With no address, ray::Init starts a local cluster for this program (a
// control service, a node daemon and worker processes) and stops it at
// Shutdown. Pass --ray_address=HOST:PORT (or set RAY_ADDRESS) to use a
// cluster started with `sunray start --head`. Workers run this same binary:
// ray::Init recognizes them and never returns there.
#include <ray/api.h>

#include <iostream>
#include <string>
#include <vector>

// A remote function: any registered free function can run as a task.
int Square(int x) { return x * x; }

// Tasks may submit tasks and wait for them.
int SumOfSquares(int n) {
  std::vector<ray::ObjectRef<int>> parts;
  for (int i = 1; i <= n; ++i) parts.push_back(ray::Task(Square).Remote(i));
  int total = 0;
  for (const auto &value : ray::Get(parts)) total += *value;
  return total;
}

RAY_REMOTE(Square, SumOfSquares);

// A remote class: an actor keeps state between calls.
class Counter {
 public:
  explicit Counter(int start) : value_(start) {}
  static Counter *Create(int start) { return new Counter(start); }
  int Add(int amount) { return value_ += amount; }
  std::string Describe() const { return "counter at " + std::to_string(value_); }

 private:
  int value_;
};

RAY_REMOTE(Counter::Create, &Counter::Add, &Counter::Describe);

int main(int argc, char **argv) {
  ray::RayConfig config;
  ray::Init(config, argc, argv);

  // Tasks return futures (ObjectRefs); Get waits for the value.
  ray::ObjectRef<int> nine = ray::Task(Square).Remote(3);
  std::cout << "Square(3) = " << *nine.Get() << "\n";

  // An ObjectRef can be passed where the function takes its value.
  ray::ObjectRef<int> eighty_one = ray::Task(Square).Remote(nine);
  std::cout << "Square(Square(3)) = " << *ray::Get(eighty_one) << "\n";
  std::cout << "SumOfSquares(10) = " << *ray::Task(SumOfSquares).Remote(10).Get() << "\n";

  // Actors: calls from one caller run in order.
  ray::ActorHandle<Counter> counter = ray::Actor(Counter::Create).Remote(100);
  for (int i = 0; i < 5; ++i) counter.Task(&Counter::Add).Remote(i);
  std::cout << *counter.Task(&Counter::Describe).Remote().Get() << "\n";

  // Put stores a value; Wait tells which futures are ready.
  ray::ObjectRef<std::string> greeting = ray::Put(std::string("hello from the object store"));
  std::vector<ray::ObjectRef<int>> squares;
  for (int i = 0; i < 4; ++i) squares.push_back(ray::Task(Square).Remote(i));
  ray::WaitResult<int> ready = ray::Wait(squares, /*num_objects=*/4, /*timeout_ms=*/10000);
  std::cout << *greeting.Get() << "; " << ready.ready.size() << " of " << squares.size()
            << " squares ready\n";

  // Errors thrown in tasks come back at Get.
  try {
    ray::Task(Square).SetResource("CPU", 1.5).Remote(2);
  } catch (const ray::internal::RayException &e) {
    std::cout << "rejected: " << e.what() << "\n";
  }

  ray::Shutdown();
  return 0;
}
