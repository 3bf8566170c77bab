import sys, time
from fail2ban.server.database import Fail2BanDb
from fail2ban.server.ticket import BanTicket
class Actions:
    def __init__(self, bt): self.bt = bt
    def getBanTime(self): return self.bt
class Jail:
    def __init__(self, name, bt): self.name, self.actions = name, Actions(bt)
    def isEnabled(self): return True
db = Fail2BanDb(sys.argv[1])
now = int(sys.argv[2])
sshd, rec = Jail("sshd", 600), Jail("recidive", 604800)
db.addJail(sshd); db.addJail(rec)
def ban(jail, ip, t, bt, matches, failures=5, count=1):
    tk = BanTicket(ip, t, matches)
    tk.setBanTime(bt); tk.setBanCount(count); tk.setAttempt(failures)
    db.addBan(jail, tk)
ban(sshd, "192.0.2.1", now - 60, 600, ["Nov 27 18:00:01 host sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2"])
ban(sshd, "192.0.2.2", now - 7200, 600, ["old"])          # expired
ban(sshd, "2001:db8::5", now - 10, -1, ["perm"], 3)       # permanent
ban(rec, "192.0.2.1", now - 30, 604800, ["recidive"], 7, 2)  # longer ban, same address
ban(sshd, "198.51.100.9", now - 100, 3600, ["m1", "m2"])
db.close()
