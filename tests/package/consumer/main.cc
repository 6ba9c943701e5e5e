#include <ray/api.h>

#include <iostream>

int Times(int a, int b) { return a * b; }
RAY_REMOTE(Times);

class Adder {
 public:
  static Adder *Create() { return new Adder(); }
  int Add(int x) { return total_ += x; }

 private:
  int total_ = 0;
};
RAY_REMOTE(Adder::Create, &Adder::Add);

int main() {
  ray::RayConfig config;
  config.local_mode = true;
  ray::Init(config);
  int product = *ray::Task(Times).Remote(6, 7).Get();
  auto adder = ray::Actor(Adder::Create).Remote();
  adder.Task(&Adder::Add).Remote(3);
  int total = *adder.Task(&Adder::Add).Remote(4).Get();
  ray::Shutdown();
  std::cout << "consumer ok: " << product << " " << total << std::endl;
  return product == 42 && total == 7 ? 0 : 1;
}
