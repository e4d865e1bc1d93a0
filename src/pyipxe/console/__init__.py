"""The console: what iPXE prints and the keys it reads, on a terminal or a pipe."""
