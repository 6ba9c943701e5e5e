// Put throughput through the node object store's real client path: a store
// server (gRPC + handshake socket) and, per put, a freshly connected client —
// what a new worker process sees: its own mapping of the segment, whose pages
// it has never touched.
//
//   bench/store_benchmark [--size-mib N] [--repeats R]
//
// Prints the median GB/s (and the range) with and without prefaulting the
// object's pages (StoreClient::Options::populate_on_create), then for one
// long-lived client putting repeatedly.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "src/objstore/object_store.h"
#include "src/objstore/store_client.h"
#include "src/objstore/store_server.h"
#include "src/rpc/rpc.h"

int main(int argc, char **argv) {
  size_t size_mib = 256;
  int repeats = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--size-mib") == 0) size_mib = std::stoul(argv[i + 1]);
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::stoi(argv[i + 1]);
  }
  const size_t size = size_mib << 20;
  char pattern[] = "/tmp/sunray-store-bench.XXXXXX";
  if (mkdtemp(pattern) == nullptr) return 1;
  const std::string directory = pattern;
  const std::string token = "bench";
  auto store = sunray::ObjectStore::Create({size * 2, "sunray-store-bench"});
  if (!store.ok()) {
    std::cerr << store.status() << "\n";
    return 1;
  }
  sunray::StoreServer server(**store, token, directory + "/store.sock");
  if (!server.Start().ok()) return 1;
  sunray::rpc::RpcServer rpc;
  auto port = rpc.Start("127.0.0.1:0", {&server});
  if (!port.ok()) return 1;
  const std::vector<char> payload(size, 7);

  for (bool populate : {false, true}) {
    std::vector<double> rates;
    for (int i = 0; i < repeats; ++i) {
      auto client = sunray::StoreClient::Connect(
          {directory + "/store.sock", "127.0.0.1:" + std::to_string(*port), token, populate});
      if (!client.ok()) {
        std::cerr << client.status() << "\n";
        return 1;
      }
      const auto id = sunray::ObjectID::ForTask(sunray::TaskID::FromRandom(), 1);
      const auto start = std::chrono::steady_clock::now();
      auto status = (*client)->Put(id, std::string_view(payload.data(), payload.size()));
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!status.ok()) {
        std::cerr << status << "\n";
        return 1;
      }
      (void)(*client)->Delete({id});
      rates.push_back(static_cast<double>(size) / 1e9 / seconds);
    }
    std::sort(rates.begin(), rates.end());
    std::cout << "store_put_fresh_client_" << size_mib << "MiB"
              << (populate ? "_populate" : "_page_faults") << "  " << rates[rates.size() / 2]
              << " GB/s  [" << rates.front() << " .. " << rates.back() << "]\n";
  }
  // One long-lived client putting repeatedly (as a driver does): its mapping
  // keeps the pages it touched, so later puts copy into resident memory.
  {
    auto client = sunray::StoreClient::Connect(
        {directory + "/store.sock", "127.0.0.1:" + std::to_string(*port), token, true});
    if (!client.ok()) return 1;
    std::vector<double> rates;
    for (int i = 0; i < repeats + 1; ++i) {
      const auto id = sunray::ObjectID::ForTask(sunray::TaskID::FromRandom(), 1);
      const auto start = std::chrono::steady_clock::now();
      auto status = (*client)->Put(id, std::string_view(payload.data(), payload.size()));
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!status.ok()) return 1;
      (void)(*client)->Delete({id});
      if (i > 0) rates.push_back(static_cast<double>(size) / 1e9 / seconds);  // skip warm-up
    }
    std::sort(rates.begin(), rates.end());
    std::cout << "store_put_same_client_" << size_mib << "MiB  " << rates[rates.size() / 2]
              << " GB/s  [" << rates.front() << " .. " << rates.back() << "]\n";
  }
  rpc.Stop();
  server.Stop();
  std::filesystem::remove_all(directory);
  return 0;
}
