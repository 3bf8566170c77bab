// Package fail2ban reads fail2ban's configuration and runs its filters, so
// that a fail2ban user can bring jails and filters to phalanx unchanged.
//
// Configuration: ReadConf reads name.conf, name.d/*.conf, name.local and
// name.d/*.local under a root (/etc/fail2ban) exactly as fail2ban's
// ConfigReader does — [INCLUDES] before/after, [DEFAULT] falling through,
// %(var)s interpolation with fail2ban's known/ and default/ prefixes,
// continuation lines, "#" and ";" comments. Conf.Sections, Conf.Get and
// Conf.GetWith are what an importer of jail.conf needs; ParseFilterSpec
// splits a jail's `filter = sshd[mode=aggressive]`.
package fail2ban
