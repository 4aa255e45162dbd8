#include "config/yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace callrelay::config::detail {

int line_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  return m.line >= 0 ? m.line + 1 : 0;
}

Field child(const Field& parent, const YAML::Node& key, const YAML::Node& value) {
  const std::string name = key.IsScalar() ? key.Scalar() : std::string("?");
  Field f;
  f.path = parent.path.empty() ? name : parent.path + "." + name;
  f.node = value;
  f.line = line_of(key);
  if (f.line == 0) f.line = line_of(value);
  return f;
}

namespace {

/// Whether the value at `path` is a credential: a REST secret, a static user's password, an
/// API key, the signaling token secret, a webhook's signing secret. Files that hold one
/// (secret_file, key_file) are paths, not credentials.
bool secret_path(std::string_view path) {
  if (path.starts_with("auth.users")) return true;  // auth.users.<name>: the password
  std::string_view last = path.substr(path.rfind('.') + 1);  // npos + 1 == 0: the whole path
  last = last.substr(0, last.find('['));                      // "secrets[0]" -> "secrets"
  if (last == "secrets" || last == "secret" || last == "token_secret") return true;
  return path.starts_with("api.keys") && (last == "key" || last == "keys");
}

/// The credentials under `path` (the node itself, or members and items whose own path is
/// one), bounded: a message masks at most this many.
void secrets_under(const std::string& path, const YAML::Node& n, std::vector<std::string>& out,
                   int depth = 0) {
  if (depth > 8 || out.size() > 64) return;
  if (n.IsScalar()) {
    if (secret_path(path)) out.push_back(n.Scalar());
  } else if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
      secrets_under(path.empty() ? key : path + "." + key, it->second, out, depth + 1);
    }
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      secrets_under(path + "[" + std::to_string(i) + "]", n[i], out, depth + 1);
  }
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
    s.replace(at, what.size(), with);
}

/// `message` with every credential under `f` replaced by "***": configuration errors reach the
/// log (a rejected reload) and the terminal, and no secret may appear in either.
std::string masked(const Field& f, std::string_view message) {
  std::string m(message);
  std::vector<std::string> values;
  secrets_under(f.path, f.node, values);
  for (const std::string& v : values) {
    if (v.empty()) continue;
    replace_all(m, "'" + v + "'", "'***'");
    if (v.size() >= 4) replace_all(m, v, "***");
  }
  return m;
}

}  // namespace

void Reader::error(const Field& f, std::string_view message) {
  std::string e = source_;
  if (f.line > 0) e += ":" + std::to_string(f.line);
  e += ": key '" + f.path + "': ";
  e += masked(f, message);
  errors_.push_back(std::move(e));
}

void Reader::error_at(int line, std::string_view message) {
  std::string e = source_;
  if (line > 0) e += ":" + std::to_string(line);
  e += ": ";
  e += message;
  errors_.push_back(std::move(e));
}

namespace {

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters ("prots" -> "ports") each count one.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    default:
      return "an undefined value";
  }
}

}  // namespace

std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  // Short words tolerate one edit, longer ones two or three: close enough to be a typo.
  size_t best_distance = word.size() <= 4 ? 1 : (word.size() <= 8 ? 2 : 3);
  for (std::string_view c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d <= best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

void Reader::read_map(const Field& f, const std::vector<KeyHandler>& handlers) {
  if (f.node.IsNull()) return;
  if (!f.node.IsMap()) {
    error(f, "must be a mapping of keys, not " + describe(f.node));
    return;
  }
  std::vector<std::string_view> known;
  for (const KeyHandler& h : handlers) known.push_back(h.key);
  std::set<std::string, std::less<>> seen;
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    const Field entry = child(f, it->first, it->second);
    if (!it->first.IsScalar()) {
      error(entry, "keys must be plain names");
      continue;
    }
    const std::string& key = it->first.Scalar();
    if (!seen.insert(key).second) {
      error(entry, "duplicate key (each key may appear once)");
      continue;
    }
    const auto h = std::find_if(handlers.begin(), handlers.end(),
                                [&](const KeyHandler& k) { return k.key == key; });
    if (h != handlers.end()) {
      h->read(entry);
      continue;
    }
    std::string msg = "unknown key";
    if (const auto guess = closest(key, known)) {
      msg += "; did you mean '" + (f.path.empty() ? "" : f.path + ".") + std::string(*guess) + "'?";
    }
    error(entry, msg);
  }
}

std::optional<std::string> Reader::string(const Field& f) {
  if (!f.node.IsScalar()) {
    error(f, "must be a string, not " + describe(f.node));
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<std::string> Reader::choice(const Field& f,
                                          std::initializer_list<std::string_view> choices,
                                          std::string_view note) {
  auto s = string(f);
  if (!s) return std::nullopt;
  for (const std::string_view c : choices) {
    if (*s == c) return s;
  }
  const bool two = choices.size() == 2;
  std::string message = two ? "must be " : "must be one of ";
  for (const std::string_view c : choices) {
    if (c != *choices.begin()) message += two ? " or " : ", ";
    message += c;
  }
  if (!note.empty()) message.append(" ").append(note);
  message += two ? ", not '" : "; not '";
  error(f, message + *s + "'");
  return std::nullopt;
}

std::optional<bool> Reader::boolean(const Field& f) {
  bool value = false;
  if (!f.node.IsScalar() || !YAML::convert<bool>::decode(f.node, value)) {
    error(f, "must be true or false, not " + describe(f.node));
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> Reader::integer(const Field& f, int64_t min, int64_t max) {
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!f.node.IsScalar()) {
    error(f, "must be " + range + ", not " + describe(f.node));
    return std::nullopt;
  }
  const std::string& text = f.node.Scalar();
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    error(f, "must be " + range + ", not '" + text + "'");
    return std::nullopt;
  }
  return value;
}

void Reader::for_each_item(const Field& f, const std::function<void(const Field&)>& visit) {
  if (f.node.IsNull()) return;
  if (!f.node.IsSequence()) {
    error(f, "must be a list, not " + describe(f.node));
    return;
  }
  for (size_t i = 0; i < f.node.size(); ++i) {
    Field item;
    item.path = f.path + "[" + std::to_string(i) + "]";
    item.node = f.node[i];
    item.line = line_of(item.node);
    if (item.line == 0) item.line = f.line;
    visit(item);
  }
}

std::optional<std::vector<std::string>> Reader::string_list(const Field& f) {
  const size_t errors_before = errors_.size();
  std::vector<std::string> out;
  for_each_item(f, [&](const Field& item) {
    if (auto s = string(item)) out.push_back(std::move(*s));
  });
  if (errors_.size() != errors_before) return std::nullopt;
  return out;
}

}  // namespace callrelay::config::detail
