import { readFileSync } from 'node:fs';

/**
 * When process `pid` started: field 22 of /proc/PID/stat, in clock ticks since boot; or
 * undefined when there is no such process. With its pid it tells a process from a later
 * one that got the same pid (an errand restarted as PID 1 of a container gets it each time).
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The name in parentheses may hold spaces and parentheses: count from the last `)`.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
