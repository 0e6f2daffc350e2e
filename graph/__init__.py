"""The Strawberry schema: types, queries, mutations and subscriptions over server's services."""
