// Values through msgpack: Put/Get and task arguments and results.
#include <any>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
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

using AnyVector = std::vector<std::any>;

// What a std::any holding each packable type reads back as (see
// msgpack_adaptor.h): a text naming the type and value.
std::string DescribeAny(const std::any &value) {
  if (!value.has_value()) return "empty";
  if (auto *b = std::any_cast<bool>(&value)) return std::string("bool ") + (*b ? "true" : "false");
  if (auto *u = std::any_cast<uint64_t>(&value)) return "uint64 " + std::to_string(*u);
  if (auto *i = std::any_cast<int64_t>(&value)) return "int64 " + std::to_string(*i);
  if (auto *d = std::any_cast<double>(&value)) return "double " + std::to_string(*d);
  if (auto *s = std::any_cast<std::string>(&value)) return "string " + *s;
  if (auto *c = std::any_cast<std::vector<char>>(&value)) {
    return "binary " + std::string(c->begin(), c->end());
  }
  if (auto *v = std::any_cast<AnyVector>(&value)) {
    std::string items = "array [";
    for (const auto &item : *v) items += DescribeAny(item) + ";";
    return items + "]";
  }
  return std::string("other ") + value.type().name();
}

std::vector<std::string> DescribeAnys(const AnyVector &values) {
  std::vector<std::string> described;
  for (const auto &value : values) described.push_back(DescribeAny(value));
  return described;
}

AnyVector EchoAnys(AnyVector values) { return values; }
std::any EchoAny(std::any value) { return value; }
std::vector<std::string> DescribeRemotely(AnyVector values) { return DescribeAnys(values); }

RAY_REMOTE(EchoAnys, EchoAny, DescribeRemotely);

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

// Regression: std::any values did not compile ("'const class std::any' has
// no member named 'msgpack_pack'"); Ray's C++ API carries them.
TEST_P(SerializationTest, AnyValuesTravelAsTheirMsgpackTypes) {
  const AnyVector values{std::any(),
                         true,
                         7,
                         -7,
                         std::numeric_limits<uint64_t>::max(),
                         std::numeric_limits<int64_t>::min(),
                         2.5f,
                         -0.125,
                         std::string("text"),
                         "literal",
                         std::vector<char>{'b', 'i', 'n'},
                         AnyVector{1, std::string("nested")}};
  const std::vector<std::string> expected{"empty",
                                          "bool true",
                                          "uint64 7",
                                          "int64 -7",
                                          "uint64 18446744073709551615",
                                          "int64 -9223372036854775808",
                                          "double 2.500000",
                                          "double -0.125000",
                                          "string text",
                                          "string literal",
                                          "binary bin",
                                          "array [uint64 1;string nested;]"};
  EXPECT_EQ(DescribeAnys(*ray::Put(values).Get()), expected);
  EXPECT_EQ(DescribeAnys(*ray::Task(EchoAnys).Remote(values).Get(kTimeoutMs)), expected);
  EXPECT_EQ(*ray::Task(DescribeRemotely).Remote(values).Get(kTimeoutMs), expected);
  EXPECT_EQ(DescribeAny(*ray::Task(EchoAny).Remote(std::any(std::string("one"))).Get(kTimeoutMs)),
            "string one");
}

TEST_P(SerializationTest, AnAnyOfAnUnsupportedTypeFailsNamingIt) {
  struct Opaque {};
  try {
    ray::Put(std::any(Opaque{}));
    FAIL() << "an Opaque inside std::any was serialized";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("Opaque"), std::string::npos) << e.what();
  }
}

// Regression: Serializer::Serialize(nullptr, 0) took msgpack's C-string
// path and crashed in strlen.
TEST_P(SerializationTest, BoundaryValuesRoundTripThroughTheSerializer) {
  using ray::internal::Serializer;
  auto null_data = Serializer::Serialize(nullptr, 0);
  EXPECT_EQ(Serializer::Deserialize<std::string>(null_data.data(), null_data.size()), "");
  char *no_chars = nullptr;
  auto null_chars = Serializer::Serialize(no_chars, 0);
  EXPECT_EQ(Serializer::Deserialize<std::string>(null_chars.data(), null_chars.size()), "");
  const char bytes[] = {'a', '\0', 'b'};
  auto sized = Serializer::Serialize(bytes, 3);
  EXPECT_EQ(Serializer::Deserialize<std::string>(sized.data(), sized.size()),
            std::string(bytes, 3));
  auto empty_string = Serializer::Serialize(std::string());
  EXPECT_EQ(Serializer::Deserialize<std::string>(empty_string.data(), empty_string.size()), "");
  auto empty_vector = Serializer::Serialize(IntVector{});
  EXPECT_TRUE(Serializer::Deserialize<IntVector>(empty_vector.data(), empty_vector.size()).empty());
  for (int64_t extreme : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                          std::numeric_limits<int64_t>::max()}) {
    auto packed = Serializer::Serialize(extreme);
    EXPECT_EQ(Serializer::Deserialize<int64_t>(packed.data(), packed.size()), extreme);
  }
  auto biggest = Serializer::Serialize(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(Serializer::Deserialize<uint64_t>(biggest.data(), biggest.size()),
            std::numeric_limits<uint64_t>::max());
  auto smallest = Serializer::Serialize(std::numeric_limits<double>::lowest());
  EXPECT_EQ(Serializer::Deserialize<double>(smallest.data(), smallest.size()),
            std::numeric_limits<double>::lowest());
}

}  // namespace
