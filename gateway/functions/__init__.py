"""In-call functions: synchronous handlers a voice agent calls while its caller waits."""
