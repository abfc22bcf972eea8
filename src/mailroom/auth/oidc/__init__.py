"""OpenID Connect: the web login (authorization code with PKCE) and the provider's access
tokens as Bearer credentials on the API (docs/auth.md).

- :mod:`.client`: the provider's protocol and the validation of its tokens, nothing of
  mailroom's users: :mod:`._provider` (HTTP, discovery, keys and their rotation, JWT
  signatures), :mod:`._login` (authorization request with PKCE, code exchange, ID token)
  and :mod:`._access` (access tokens as JWTs or by introspection, userinfo).
- :mod:`.state`: the pending login a browser carries between the redirect and the callback.
- :mod:`.claims`: what a token's claims say (address, admin, managed domains, scopes) under
  the settings.
- :mod:`.users`: claims → a mailbox → a :class:`~mailroom.auth.principal.Principal`, and the
  Bearer handler.

Front-ends may import :mod:`.client`, :mod:`.state` and :mod:`.claims` (they do not reach the
store); :mod:`.users` reads the store.
"""
