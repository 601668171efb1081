#include "route_table.hpp"

namespace moni::host {

bool RouteTable::add(Route r, std::string& err) {
  std::lock_guard lock(mu_);
  return add_to(routes_, std::move(r), err);
}

bool RouteTable::add_to(Map& map, Route r, std::string& err) {
  auto it = map.find(r.path);
  if (it != map.end()) {
    if (r.fallback) return true;  // the ordinary route (or first fallback) stays
    if (!it->second->fallback) {
      err = "route " + r.path + " is already served by " + it->second->owner;
      return false;
    }
    it->second = std::make_shared<const Route>(std::move(r));
    return true;
  }
  std::string path = r.path;
  map.emplace(std::move(path), std::make_shared<const Route>(std::move(r)));
  return true;
}

std::shared_ptr<const Route> RouteTable::find(const std::string& path) const {
  std::lock_guard lock(mu_);
  if (auto it = routes_.find(path); it != routes_.end()) return it->second;
  std::shared_ptr<const Route> best;
  for (const auto& [p, r] : routes_)
    if (!p.empty() && p.back() == '/' && path.starts_with(p) &&
        (!best || p.size() > best->path.size()))
      best = r;
  return best;
}

void RouteTable::replace(Map routes) {
  std::lock_guard lock(mu_);
  routes_.swap(routes);
}

RouteTable::Map RouteTable::snapshot() const {
  std::lock_guard lock(mu_);
  return routes_;
}

}  // namespace moni::host
