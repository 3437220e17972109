# Managed by foobar: login shells get no core dumps and end after 900 s idle at the prompt (hardening.shell_timeout).
ulimit -c 0
TMOUT=900
readonly TMOUT
export TMOUT
