// Starts GraphiQL on /graphql of this server. A file of its own, not an inline script, so the
// Content-Security-Policy can allow scripts from 'self' only.
(function () {
  "use strict";

  var DEFAULT_QUERY = [
    "# divide-support の GraphQL API です。",
    "#",
    "# ログインしてトークンを受け取り、下の「Headers」に",
    '#   {"Authorization": "Bearer <token>"}',
    "# と書くと、そのユーザーとして問い合わせできます（ヘッダーはブラウザに保存されません）。",
    "#",
    '#   mutation { login(input: {email: "staff@example.jp", password: "..."}) { token errors { code message } } }',
    "#",
    "# 実行: Ctrl-Enter（または ▶ ボタン）　補完: Ctrl-Space",
    "",
    "{ me { displayName role } }",
    "",
  ].join("\n");

  var fetcher = GraphiQL.createFetcher({
    url: new URL("/graphql", window.location.origin).toString(),
    // No subscriptions here: no WebSocket, nothing outside connect-src 'self'.
  });

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // A bearer token typed into the headers editor stays out of localStorage.
      shouldPersistHeaders: false,
    }),
  );
})();
