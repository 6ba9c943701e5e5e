// Values through msgpack: Put/Get and task arguments and results.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime_fixture.h"

namespace {

using sunray_test::kTimeoutMs;

struct Point {
  int x = 0;
  std::string label;
  std::vector<double> weights;
  bool operator==(const Point &other) const {
    return x == other.x && label == other.label && weights == other.weights;
  }
  MSGPACK_DEFINE(x, label, weights);
};

struct Shape {
  std::string name;
  std::vector<Point> corners;
  std::map<std::string, Point> named;
  bool operator==(const Shape &other) const {
    return name == other.name && corners == other.corners && named == other.named;
  }
  MSGPACK_DEFINE(name, corners, named);
};

using IntVector = std::vector<int>;
using StringMap = std::map<std::string, int>;
using StringHashMap = std::unordered_map<std::string, std::vector<std::string>>;
using Record = std::tuple<int, std::string, double, bool>;
using NamePair = std::pair<std::string, int64_t>;
using ByteVector = std::vector<std::byte>;
using CharVector = std::vector<char>;
using U8Vector = std::vector<uint8_t>;
using NestedVector = std::vector<std::vector<std::string>>;

template <typename T>
T Echo(T value) {
  return value;
}

uint64_t Checksum(const U8Vector &bytes) {
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes.size(); ++i) sum = sum * 31 + bytes[i];
  return sum;
}
U8Vector MakeBytes(size_t size) {
  U8Vector bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + (i >> 13));
  return bytes;
}

RAY_REMOTE(Echo<int>, Echo<int64_t>, Echo<uint64_t>, Echo<double>, Echo<bool>, Echo<std::string>,
           Echo<IntVector>, Echo<StringMap>, Echo<StringHashMap>, Echo<Record>, Echo<NamePair>,
           Echo<ByteVector>, Echo<CharVector>, Echo<U8Vector>, Echo<NestedVector>, Echo<Point>,
           Echo<Shape>, Checksum, MakeBytes);

class SerializationTest : public sunray_test::RuntimeTest {
 protected:
  // `value` survives Put/Get and a trip through a task as argument and result.
  template <typename T>
  void ExpectRoundTrip(const T &value) {
    auto put = ray::Put(value);
    EXPECT_EQ(*put.Get(), value);
    EXPECT_EQ(*ray::Task(Echo<T>).Remote(value).Get(kTimeoutMs), value);
    EXPECT_EQ(*ray::Task(Echo<T>).Remote(put).Get(kTimeoutMs), value);
  }
};
SUNRAY_INSTANTIATE_RUNTIMES(SerializationTest);

TEST_P(SerializationTest, ScalarsRoundTrip) {
  ExpectRoundTrip(0);
  ExpectRoundTrip(std::numeric_limits<int>::min());
  ExpectRoundTrip(std::numeric_limits<int64_t>::max());
  ExpectRoundTrip(std::numeric_limits<uint64_t>::max());
  ExpectRoundTrip(-1.25);
  ExpectRoundTrip(true);
  ExpectRoundTrip(false);
}

TEST_P(SerializationTest, StringsRoundTrip) {
  ExpectRoundTrip(std::string("hello"));
  ExpectRoundTrip(std::string(""));
  ExpectRoundTrip(std::string("nul\0inside", 10));
  ExpectRoundTrip(std::string(100000, 'x'));
}

TEST_P(SerializationTest, VectorsRoundTrip) {
  ExpectRoundTrip(IntVector{1, -2, 3});
  ExpectRoundTrip(IntVector{});
  ExpectRoundTrip(NestedVector{{"a", "b"}, {}, {""}});
}

TEST_P(SerializationTest, MapsRoundTrip) {
  ExpectRoundTrip(StringMap{{"one", 1}, {"two", 2}});
  ExpectRoundTrip(StringMap{});
  ExpectRoundTrip(StringHashMap{{"x", {"1", "2"}}, {"y", {}}});
}

TEST_P(SerializationTest, TuplesAndPairsRoundTrip) {
  ExpectRoundTrip(Record{7, "seven", 7.5, true});
  ExpectRoundTrip(NamePair{"id", -9000000000LL});
}

TEST_P(SerializationTest, BinaryVectorsRoundTrip) {
  ExpectRoundTrip(ByteVector{std::byte{0}, std::byte{0xff}, std::byte{0x7f}});
  ExpectRoundTrip(ByteVector{});
  ExpectRoundTrip(CharVector{'a', '\0', 'b'});
  ExpectRoundTrip(CharVector{});
  ExpectRoundTrip(U8Vector{0, 1, 254, 255});
}

TEST_P(SerializationTest, StructsWithMsgpackDefineRoundTrip) {
  Point origin{0, "origin", {}};
  Point corner{3, "corner", {0.5, 1.5}};
  ExpectRoundTrip(corner);
  ExpectRoundTrip(Shape{"triangle", {origin, corner, {1, "", {2.0}}}, {{"start", origin}}});
  ExpectRoundTrip(Shape{});
}

TEST_P(SerializationTest, LargeBinaryValuesRoundTrip) {
  const U8Vector big = MakeBytes(8 << 20);
  const uint64_t checksum = Checksum(big);
  auto put = ray::Put(big);
  auto got = put.Get();
  ASSERT_EQ(got->size(), big.size());
  EXPECT_EQ(Checksum(*got), checksum);
  // As an argument, by value and by reference, and as a result.
  EXPECT_EQ(*ray::Task(Checksum).Remote(big).Get(kTimeoutMs), checksum);
  EXPECT_EQ(*ray::Task(Checksum).Remote(put).Get(kTimeoutMs), checksum);
  auto made = ray::Task(MakeBytes).Remote(size_t{8 << 20});
  EXPECT_EQ(Checksum(*made.Get(kTimeoutMs)), checksum);
  EXPECT_EQ(*ray::Task(Checksum).Remote(made).Get(kTimeoutMs), checksum);
}

TEST_P(SerializationTest, GetReturnsAFreshCopyEachTime) {
  auto ref = ray::Put(IntVector{1, 2, 3});
  auto first = ref.Get();
  first->push_back(4);
  EXPECT_EQ(*ref.Get(), (IntVector{1, 2, 3}));
}

TEST_P(SerializationTest, ObjectRefsNestInsideValues) {
  std::vector<ray::ObjectRef<std::string>> refs{ray::Put(std::string("a")),
                                                ray::Put(std::string("b"))};
  auto outer = ray::Put(refs);
  auto inner = outer.Get();
  ASSERT_EQ(inner->size(), 2u);
  EXPECT_EQ((*inner)[0], refs[0]);
  EXPECT_EQ(*(*inner)[1].Get(), "b");
}

TEST_P(SerializationTest, SerializerRoundTripsDirectly) {
  using ray::internal::Serializer;
  auto buffer = Serializer::Serialize(Record{1, "x", 2.0, false});
  EXPECT_EQ(Serializer::Deserialize<Record>(buffer.data(), buffer.size()),
            (Record{1, "x", 2.0, false}));
  auto nil = Serializer::Serialize(msgpack::type::nil_t());
  EXPECT_TRUE(Serializer::IsNil(nil.data(), nil.size()));
  EXPECT_FALSE(Serializer::IsNil(buffer.data(), buffer.size()));
  EXPECT_THROW(Serializer::Deserialize<std::string>(buffer.data(), buffer.size()),
               msgpack::type_error);
}

}  // namespace
