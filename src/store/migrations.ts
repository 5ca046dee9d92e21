/**
 * The store's schema, as ordered steps. `PRAGMA user_version` holds how many have been
 * applied; each step runs in its own transaction. Never edit a released step: add one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    repo_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    title TEXT NOT NULL,
    model TEXT,
    session_id TEXT,
    schedule_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX conversations_repo_updated ON conversations (repo_id, updated_at);
  CREATE INDEX conversations_updated ON conversations (updated_at);

  CREATE TABLE thread_keys (
    repo_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    PRIMARY KEY (repo_id, channel, thread_key)
  );
  CREATE INDEX thread_keys_conversation ON thread_keys (conversation_id);

  CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    repo_id TEXT NOT NULL,
    state TEXT NOT NULL,
    seq INTEGER NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    outcome TEXT,
    usage TEXT,
    schedule_id TEXT
  );
  CREATE INDEX tasks_state_seq ON tasks (state, seq);
  CREATE INDEX tasks_conversation ON tasks (conversation_id, seq);
  CREATE INDEX tasks_schedule ON tasks (schedule_id, state);

  CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    repo_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    content_hash TEXT,
    thread_keys TEXT NOT NULL,
    own_thread_key TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT,
    subject TEXT,
    text TEXT NOT NULL,
    attachments TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    model TEXT,
    meta TEXT,
    state TEXT NOT NULL,
    state_reason TEXT,
    conversation_id TEXT REFERENCES conversations (id) ON DELETE CASCADE,
    task_id TEXT REFERENCES tasks (id) ON DELETE CASCADE,
    stored_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX messages_external ON messages (repo_id, channel, external_id);
  CREATE INDEX messages_hash ON messages (repo_id, channel, content_hash) WHERE content_hash IS NOT NULL;
  CREATE INDEX messages_state ON messages (state);
  CREATE INDEX messages_conversation ON messages (conversation_id, received_at);
  CREATE INDEX messages_task ON messages (task_id, received_at);

  CREATE TABLE task_events (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
  ) WITHOUT ROWID;

  CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    repo_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    conversation_id TEXT REFERENCES conversations (id) ON DELETE CASCADE,
    task_id TEXT REFERENCES tasks (id) ON DELETE CASCADE,
    message_id TEXT,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    files TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
  );
  CREATE INDEX deliveries_state ON deliveries (state, created_at);
  CREATE INDEX deliveries_task ON deliveries (task_id);
  CREATE INDEX deliveries_conversation ON deliveries (conversation_id, created_at);
  `,
];
