/**
 * Can the service user open a device node? The user and its supplementary groups come from the
 * unit (User=, SupplementaryGroups=) and the root's /etc/passwd and /etc/group; the node's owner,
 * group and mode from stat. Read-only: nothing is opened for writing.
 */
import { statSync } from "node:fs";
import { readText, under } from "./files.ts";

export interface ServiceUser {
  name: string;
  uid: number | undefined;
  gids: Set<number>;
  groupNames: string[];
}

export function parsePasswd(text: string): Map<string, { uid: number; gid: number }> {
  const users = new Map<string, { uid: number; gid: number }>();
  for (const line of text.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name && uid !== undefined && gid !== undefined)
      users.set(name, { uid: Number(uid), gid: Number(gid) });
  }
  return users;
}

export function parseGroup(text: string): Array<{ name: string; gid: number; members: string[] }> {
  const groups: Array<{ name: string; gid: number; members: string[] }> = [];
  for (const line of text.split("\n")) {
    const [name, , gid, members] = line.split(":");
    if (name && gid !== undefined)
      groups.push({ name, gid: Number(gid), members: (members ?? "").split(",").filter(Boolean) });
  }
  return groups;
}

/** The service user as the root's /etc/passwd and /etc/group describe it, plus the unit's extra groups. */
export function serviceUser(root: string, name: string, supplementary: string[] = []): ServiceUser {
  const passwd = parsePasswd(readText(under(root, "/etc/passwd")) ?? "");
  const groups = parseGroup(readText(under(root, "/etc/group")) ?? "");
  const entry = passwd.get(name);
  const gids = new Set<number>();
  const groupNames: string[] = [];
  for (const g of groups) {
    if (g.gid === entry?.gid || g.members.includes(name) || supplementary.includes(g.name)) {
      gids.add(g.gid);
      groupNames.push(g.name);
    }
  }
  if (entry) gids.add(entry.gid);
  return { name, uid: entry?.uid, gids, groupNames };
}

/** undefined when user can read and write path; else why not, in words. */
export function accessProblem(path: string, user: ServiceUser): string | undefined {
  const st = statSync(path);
  const mode = st.mode & 0o777;
  if (user.uid === 0) return undefined;
  if (user.uid === st.uid && (mode & 0o600) === 0o600) return undefined;
  if (user.gids.has(st.gid) && (mode & 0o060) === 0o060) return undefined;
  if ((mode & 0o006) === 0o006) return undefined;
  const groups = user.groupNames.length ? user.groupNames.join(",") : "none";
  return `${path} is uid ${st.uid} gid ${st.gid} mode ${mode.toString(8).padStart(4, "0")}: user ${user.name} (groups ${groups}) cannot open it`;
}
