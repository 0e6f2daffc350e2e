"""The operations GraphQL, REST and the jobs share. Each takes the acting user's id."""
