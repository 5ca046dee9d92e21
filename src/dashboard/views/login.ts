import { type Html, html } from '../html.ts';

export function loginPage(error: string | undefined, next: string, version: string): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · errand</title><link rel="stylesheet" href="/assets/app.css"></head>
<body class="login"><main>
<h1>errand</h1>
<form method="post" action="/login">
<input type="hidden" name="next" value="${next}">
<label for="token">Login token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${error ? html`<p class="error">${error}</p>` : ''}
<button type="submit">Log in</button>
<p class="muted">The token is in the config (<code>dashboard.token</code>, <code>dashboard.users</code>) or was printed once by <code>errand start</code>.</p>
</form>
</main><footer>errand ${version}</footer></body></html>`;
}
