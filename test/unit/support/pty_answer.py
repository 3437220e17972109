"""Runs a command in a real pseudo-terminal and answers its prompts, like expect(1).

usage: python3 pty_answer.py SCRIPT.json -- COMMAND...
SCRIPT.json: [[regex, text to type], ...] in order; each regex is awaited in the output (ANSI codes stripped)
before its text is typed. Prints the whole transcript on stdout and exits with the command's status
(or 124 when a prompt never came within 20 s).
"""
import json, os, pty, re, select, sys, time

script = json.load(open(sys.argv[1]))
cmd = sys.argv[sys.argv.index('--') + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
ansi = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')
seen = ''
pos = 0


def read(timeout):
    global seen
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    seen += data.decode('utf8', 'replace')
    return True


for pattern, text in script:
    deadline = time.time() + 20
    while True:
        clean = ansi.sub('', seen)
        m = re.compile(pattern).search(clean, pos)
        if m:
            pos = m.end()
            break
        if time.time() > deadline or read(0.2) is None:
            sys.stdout.write(ansi.sub('', seen))
            sys.stdout.write('\n[pty_answer: no prompt matching %r]\n' % pattern)
            os.kill(pid, 9)
            sys.exit(124)
    time.sleep(0.15)
    os.write(fd, text.encode())
deadline = time.time() + 30
while time.time() < deadline and read(0.5) is not None:
    pass
done, status = os.waitpid(pid, os.WNOHANG)
end = time.time() + 10
while done == 0 and time.time() < end:
    time.sleep(0.1)
    done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    sys.stdout.write(ansi.sub('', seen))
    sys.stdout.write('\n[pty_answer: still running after the last answer]\n')
    os.kill(pid, 9)
    sys.exit(124)
sys.stdout.write(ansi.sub('', seen))
sys.exit(os.waitstatus_to_exitcode(status))
