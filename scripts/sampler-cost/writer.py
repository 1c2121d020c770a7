import os, sys, time
root = sys.argv[1]
files = []
for dp, dn, fn in os.walk(root):
    if "energy_uj" in fn:
        files.append(os.open(os.path.join(dp, "energy_uj"), os.O_WRONLY))
v = 123456789
t = time.monotonic()
while True:
    t += 0.001
    v += 10000  # 10 W per zone
    b = ("%20d\n" % v).encode()
    for fd in files:
        os.pwrite(fd, b, 0)
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
