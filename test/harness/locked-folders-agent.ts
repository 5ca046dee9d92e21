/**
 * What an agent that wants its conversation to outlive retention does, as a shell script
 * for ShellAgent: in each folder it may write, folders that errand's user may not enter or
 * change (0500, 0000), a sticky folder and a folder given to another uid of the sandbox
 * (rootless: a sub-uid of errand's user on the host), then the mounted folders themselves
 * (/workspace 0500, /storage a sub-uid's and 0000), with links to the host folder
 * `hostDir` in all of them, for a removal that follows links to delete what they point to.
 */
export function lockFoldersScript(hostDir: string): string {
  const p = `'${hostDir.replaceAll("'", `'\\''`)}'`;
  return `set -e
lock() {
  d=$1
  mkdir -p $d/ro/sub && echo x > $d/ro/sub/f && ln -s ${p} $d/ro/sub/link && chmod 0500 $d/ro/sub $d/ro
  mkdir -p $d/none/inner && echo x > $d/none/inner/f && ln -s ${p} $d/none/link && chmod 000 $d/none/inner $d/none
  mkdir $d/sticky && echo x > $d/sticky/f && ln -s ${p} $d/sticky/link && chown -h 1000 $d/sticky/f $d/sticky/link $d/sticky && chmod 1700 $d/sticky
  mkdir -p $d/subuid/d && echo x > $d/subuid/f && echo x > $d/subuid/d/g && ln -s ${p} $d/subuid/escape && chown -hR 1000:1000 $d/subuid && chmod 000 $d/subuid/d && chmod 0500 $d/subuid
  ln -s ${p} $d/link-to-host
  ln -s ${p}/keep.txt $d/file-link
}
for d in /workspace /errand/agent /storage /outbox; do lock $d; done
# The mounted folders themselves too: one read-only, one given to a sub-uid and closed.
chmod 0500 /workspace
chown 1000 /storage && chmod 000 /storage
echo locked`;
}
