/**
 * `compute` once per key object (an inventory, typically), held as long as the key is: what is the same for every
 * host of an inventory (a role's peer list, the monitoring server) is then worked out once, not once per host.
 * The key must not change afterwards (a loaded inventory does not).
 */
export function memoByObject<K extends object, V>(compute: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, {value: V}>()
  return (key) => {
    let hit = cache.get(key)
    if (!hit) cache.set(key, (hit = {value: compute(key)}))
    return hit.value
  }
}
