/**
 * What errand itself says in a thread. Each notice says what happened and what the person
 * can do next; none names internals or carries error details.
 */
export const notices = {
  stoppedBeforeStart: (by: string) =>
    `Stopped by ${by} before it started. Nothing was run. Reply in this thread to try again.`,
  stopped: (by: string, partial: string) =>
    `Stopped by ${by}. Work done so far is saved in this conversation's workspace; reply in this thread to continue.${
      partial.trim() ? `\n\nLast output before the stop:\n${partial.trim()}` : ''
    }`,
  interruptedByRestart: () =>
    'errand was restarted while working on this. Work done so far is saved in the workspace; reply in this thread to continue.',
  interruptedByShutdown: () =>
    'errand was shut down while working on this. Work done so far is saved in the workspace; reply in this thread to continue.',
  internalFailure: () =>
    'errand hit an internal error while running this task and could not finish it. The operator can find details in the service log. Reply in this thread to try again.',
};
