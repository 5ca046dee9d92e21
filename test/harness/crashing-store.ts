import type { Store } from '../../src/store/types.ts';

/** Store methods that only read; every other method counts as a write. */
function reads(method: string): boolean {
  return /^(get|list|find)/.test(method) || method === 'close';
}

/**
 * Wraps a store so that the process kills itself with SIGKILL right after the `crashAfter`th
 * write committed, before the caller sees its result: the state a crash between two writes
 * leaves. A new write method is counted without being named here. `onWrite` hears each
 * write (numbered from 1) before the kill, so the parent can tell which one it was.
 */
export function crashingStore(
  store: Store,
  crashAfter: number | undefined,
  onWrite: (n: number, method: string) => void,
): Store {
  let writes = 0;
  return new Proxy(store, {
    get(target, prop) {
      // Bound to the real store: its private fields are not reachable through a proxy.
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || reads(prop))
        return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        const result: unknown = await value.apply(target, args);
        writes++;
        onWrite(writes, prop);
        if (writes === crashAfter) process.kill(process.pid, 'SIGKILL');
        return result;
      };
    },
  });
}
