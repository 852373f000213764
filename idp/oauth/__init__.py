"""OAuth 2.0 and OpenID Connect on Authlib: the server, its grants and endpoints."""
