import { type Html, html } from '../html.ts';

export interface PageContext {
  user: string;
  csrf: string;
  loginRequired: boolean;
  version: string;
}

/** The page shell: header with navigation, main content, the live-update script. */
export function layout(
  ctx: PageContext,
  title: string,
  body: Html,
  live?: { topic: string; after?: number },
): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · errand</title>
<link rel="stylesheet" href="/assets/app.css">
${live ? html`<noscript><meta http-equiv="refresh" content="5"></noscript>` : ''}
</head>
<body${live ? html` data-live="${live.topic}" data-after="${live.after ?? 0}"` : ''}>
<header>
  <a class="brand" href="/">errand</a>
  <nav><a href="/">Overview</a> <a href="/repos">Repositories</a></nav>
  <span class="who">${ctx.user}${
    ctx.loginRequired
      ? html` <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><button class="link">Log out</button></form>`
      : ''
  }</span>
</header>
<main id="main">
${body}
</main>
<footer>errand ${ctx.version}</footer>
<script src="/assets/app.js" defer></script>
</body>
</html>`;
}

export function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf}">`;
}
