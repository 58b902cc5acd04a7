/**
 * topicMatches says whether an MQTT topic name matches a subscription filter ('+' one level, '#'
 * the rest, per MQTT 3.1.1 §4.7). Shared subscriptions ($share/<group>/<filter>) match on their
 * filter part. Topics starting with '$' never match a filter starting with a wildcard.
 */
export function topicMatches(filter: string, topic: string): boolean {
  let f = filter;
  if (f.startsWith("$share/")) f = f.split("/").slice(2).join("/");
  const fl = f.split("/");
  const tl = topic.split("/");
  if (topic.startsWith("$") && (fl[0] === "+" || fl[0] === "#")) return false;
  for (let i = 0; i < fl.length; i++) {
    const level = fl[i];
    if (level === "#") return i === fl.length - 1;
    if (i >= tl.length) return false;
    if (level !== "+" && level !== tl[i]) return false;
  }
  return fl.length === tl.length;
}
