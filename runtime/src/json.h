// Minimal JSON value, parser and writer (RFC 8259), no dependencies.
// Objects keep insertion order (so written headers are stable) and duplicate
// keys are rejected (a duplicated tensor name must not silently win).
// Integers without fraction/exponent that fit int64 are kept exactly.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace strata {
namespace json {

enum class Type { Null, Bool, Number, String, Array, Object };
const char* type_name(Type t);

class Value {
 public:
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : type_(Type::Bool), bool_(b) {}
  Value(int v) : Value(static_cast<int64_t>(v)) {}
  Value(int64_t v) : type_(Type::Number), num_(static_cast<double>(v)), int_(v), is_int_(true) {}
  Value(uint64_t v);
  Value(double v) : type_(Type::Number), num_(v) {}
  Value(const char* s) : type_(Type::String), str_(s) {}
  Value(std::string s) : type_(Type::String), str_(std::move(s)) {}
  Value(Array a) : type_(Type::Array), arr_(std::move(a)) {}
  Value(Object o) : type_(Type::Object), obj_(std::move(o)) {}

  static Value array() { return Value(Array{}); }
  static Value object() { return Value(Object{}); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  // True for numbers that are exact integers representable as int64.
  bool is_integer() const;

  // Accessors throw strata::Error naming the expected and actual type.
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // exact integers only
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;

  // Object lookup; nullptr when absent (or when this is not an object).
  const Value* find(const std::string& key) const;
  // Object insert-or-replace (turns null into an empty object).
  Value& set(const std::string& key, Value v);
  // Array append (turns null into an empty array).
  void push_back(Value v);

 private:
  void expect(Type t) const;
  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  bool is_int_ = false;
  std::string str_;
  Array arr_;
  Object obj_;
};

// Parse a complete JSON text. Throws strata::Error (STRATA_ERR_FORMAT):
// "<what>: malformed JSON at line L, column C: <reason>".
Value parse(const std::string& text, const std::string& what = "JSON");

// Serialise. indent < 0: compact; otherwise pretty-printed with that many
// spaces. Non-finite numbers are written as null (JSON has no NaN/Inf).
std::string dump(const Value& v, int indent = -1);

}  // namespace json
}  // namespace strata
