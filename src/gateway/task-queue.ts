/**
 * The runnable-task queue: tasks in arrival order, at most one running per conversation,
 * at most `limit` running in all. A conversation has at most one queued task (later
 * messages merge into it), so a pick skips at most `limit` entries: O(limit), not O(queue).
 */
export interface QueuedTask {
  taskId: string;
  conversationId: string;
  repoId: string;
}

export class TaskQueue {
  #waiting: QueuedTask[] = [];
  #head = 0;
  #runningConversations = new Set<string>();
  #runningCount = 0;
  limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  get running(): number {
    return this.#runningCount;
  }

  push(task: QueuedTask): void {
    this.#waiting.push(task);
  }

  /** Drops a waiting task (stopped before it started). Returns whether it was waiting. */
  remove(taskId: string): boolean {
    for (let i = this.#head; i < this.#waiting.length; i++) {
      if (this.#waiting[i]!.taskId === taskId) {
        this.#waiting.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  /** Takes the next tasks that may start now and marks their conversations running. */
  take(): QueuedTask[] {
    const started: QueuedTask[] = [];
    let i = this.#head;
    while (this.#runningCount < this.limit && i < this.#waiting.length) {
      const t = this.#waiting[i]!;
      if (this.#runningConversations.has(t.conversationId)) {
        i++;
        continue;
      }
      this.#runningConversations.add(t.conversationId);
      this.#runningCount++;
      started.push(t);
      if (i === this.#head) {
        this.#head++;
        i++;
      } else {
        this.#waiting.splice(i, 1);
      }
    }
    this.#compact();
    return started;
  }

  /** Marks a conversation's task finished, freeing its slot. */
  done(conversationId: string): void {
    if (this.#runningConversations.delete(conversationId)) this.#runningCount--;
  }

  isRunning(conversationId: string): boolean {
    return this.#runningConversations.has(conversationId);
  }

  waitingFor(repoId: string): number {
    let n = 0;
    for (let i = this.#head; i < this.#waiting.length; i++) {
      if (this.#waiting[i]!.repoId === repoId) n++;
    }
    return n;
  }

  // Taken entries stay in the array until enough accumulate; shifting on every take
  // would make draining a long backlog quadratic.
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
  }
}
