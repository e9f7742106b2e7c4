/* SPDX-License-Identifier: MIT */
/*
 * conduit-broker: the privileged process of Conduit.  Parses the command
 * line and runs the broker; docs/man/conduit-broker.8 is the reference.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <conduit/conduit.h>

#include "broker.h"
#include "config.h"

enum {
	EXIT_USAGE = 2,	 /* bad command line */
	EXIT_POLICY = 3, /* the policy did not compile */
	EXIT_SETUP = 4,	 /* audit log, event loop or another start-up fault */
};

static void usage(FILE *f)
{
	fputs("Usage: conduit-broker --policy FILE [--audit FILE] [--heartbeat MS]\n"
	      "                      [--call-timeout MS] [--foreground]\n"
	      "       conduit-broker --help | --version\n"
	      "\n"
	      "Spawn the policy's layers in their sandboxes, carry and decide every\n"
	      "message between them, and audit every decision.\n"
	      "\n"
	      "  -p, --policy FILE  compiled and enforced policy (required)\n"
	      "  -a, --audit FILE   audit log (default: the policy's audit line)\n"
	      "  -f, --foreground   stay in the foreground (the broker never daemonizes)\n"
	      "  -H, --heartbeat MS kill a ready layer silent this long (default 10000, 0 off)\n"
	      "  -T, --call-timeout MS  deadline of a routed call (default 5000)\n"
	      "  -h, --help         this text\n"
	      "  -V, --version      version\n"
	      "\n"
	      "Signals: SIGTERM/SIGINT stop the layers and exit; SIGHUP reloads the policy.\n"
	      "Exit status: 0 stopped cleanly, 1 internal fault, 2 usage, 3 policy refused,\n"
	      "4 start-up failure (audit log, ...).\n",
	      f);
}

/* Stdio slots must be open: otherwise the first fd the broker opens would
 * land on 0..2 and a later dup2 for a layer's stdio would clobber it. */
static int stdio_fixup(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR | O_NOCTTY);
		if (n < 0)
			return -errno;
		if (n != fd)
			return -EBADF;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"policy", required_argument, NULL, 'p'},
		{"audit", required_argument, NULL, 'a'},
		{"foreground", no_argument, NULL, 'f'},
		{"heartbeat", required_argument, NULL, 'H'},
		{"call-timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct broker_opts bo = {.heartbeat_ns = BROKER_HEARTBEAT,
				 .call_timeout_ns = BROKER_CALL_TIMEOUT};
	const char *policy = NULL, *audit = NULL;
	char *end;
	unsigned long long ms;
	struct broker *b = NULL;
	int c, r;

	/* Frames to a layer are announced through a pipe whose other end a
	 * dying layer closes: that is an error to handle (EPIPE), not a
	 * signal.  Layers start with every disposition reset (spawn.c). */
	signal(SIGPIPE, SIG_IGN);
	/* A speed-up only (loop.h): a kernel that keeps the area costs time,
	 * nothing else. */
	(void)loop_rseq_release();
	while ((c = getopt_long(argc, argv, "p:a:fH:T:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			policy = optarg;
			break;
		case 'a':
			audit = optarg;
			break;
		case 'f':
			break;
		case 'H':
		case 'T':
			errno = 0;
			ms = strtoull(optarg, &end, 10);
			/* At most a day: the product stays in range of a u64 of ns. */
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    ms > 86400000ull || (c == 'T' && ms == 0)) {
				fprintf(stderr, "conduit-broker: --%s: %s..86400000 ms\n",
					c == 'H' ? "heartbeat" : "call-timeout",
					c == 'H' ? "0" : "1");
				return EXIT_USAGE;
			}
			if (c == 'H')
				bo.heartbeat_ns = ms * 1000000ull;
			else
				bo.call_timeout_ns = ms * 1000000ull;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("conduit-broker %s (protocol %d)\n", CONDUIT_VERSION,
			       CDT_PROTOCOL_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !policy) {
		fputs("conduit-broker: --policy FILE is required and no operands are taken\n",
		      stderr);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (stdio_fixup() < 0 || cdt_init() < 0) {
		fputs("conduit-broker: cannot initialise\n", stderr);
		return EXIT_SETUP;
	}
	bo.policy_path = policy;
	bo.audit_path = audit;
	r = broker_new(&bo, &b);
	if (r == -EINVAL || r == -EPERM || r == -ELOOP || r == -EFBIG || r == -E2BIG)
		return EXIT_POLICY;
	if (r < 0) {
		broker_log("start-up failed: %s", strerror(-r));
		return EXIT_SETUP;
	}
	r = broker_run(b);
	if (r < 0)
		broker_log("stopped on an internal fault: %s", strerror(-r));
	else
		broker_log("stopped");
	broker_free(b);
	return r < 0 ? 1 : 0;
}
