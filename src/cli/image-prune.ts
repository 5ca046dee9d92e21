import type { ServerConfig } from '../config/index.ts';
import type { SandboxDriver } from '../sandbox/index.ts';
import { describeError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';

/** How often a running errand removes old sandbox images. */
export const IMAGE_PRUNE_INTERVAL_MS = 24 * 3_600_000;

/**
 * Removes old sandbox images at once and then once a day, while the config's
 * `sandbox.image_prune` is on (read at each run, so a reload takes effect at the next).
 * Runs beside tasks, never before start-up finishes; a failure is logged and the next run
 * tries again. `stop()` ends the schedule and waits for a run in progress.
 */
export function scheduleImagePrune(o: {
  driver: Pick<SandboxDriver, 'pruneImages'>;
  config: () => ServerConfig;
  logger: Logger;
}): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const prune = async () => {
    if (!o.config().sandbox.image_prune) {
      o.logger.info('sandbox image pruning is off (sandbox.image_prune: false)');
      return;
    }
    try {
      const removed = await o.driver.pruneImages();
      o.logger.info({ removed }, `sandbox images pruned: ${removed.length} removed`);
    } catch (e) {
      o.logger.warn(
        { err: describeError(e) },
        'sandbox images could not be pruned; the next run tries again',
      );
    }
  };
  const tick = () => {
    running = running.then(prune);
  };
  tick();
  const timer = setInterval(tick, IMAGE_PRUNE_INTERVAL_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
