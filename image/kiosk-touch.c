/*
 * A virtual multitouch screen for the kiosk test (image/test-kiosk.sh): a uinput device
 * with the kernel's multitouch protocol B (slots, tracking ids, INPUT_PROP_DIRECT: a
 * touchscreen, not a touchpad), as a class board's panel presents itself. Weston's
 * libinput maps it to the one output like a real panel; Chromium gets touch events.
 *
 *   kiosk-touch hold X Y MS        one finger down at (X, Y), held MS milliseconds
 *   kiosk-touch pinch X Y FROM TO  two fingers around (X, Y), FROM apart moving to TO apart
 *
 * Coordinates are 0..32767 across the screen. Built static on the host (gcc -static) and
 * handed to the booted image on a raw second disk; run as root on the emergency console.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/uinput.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX 32767

static int fd;

static void die(const char *what) {
	fprintf(stderr, "kiosk-touch: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void ev(int type, int code, int value) {
	struct input_event e;
	memset(&e, 0, sizeof e);
	e.type = type;
	e.code = code;
	e.value = value;
	if (write(fd, &e, sizeof e) != sizeof e) die("write");
}

static void syn(void) { ev(EV_SYN, SYN_REPORT, 0); }

static void sleep_ms(int ms) {
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static void abs_axis(int code, int min, int max, int res) {
	struct uinput_abs_setup a;
	memset(&a, 0, sizeof a);
	a.code = code;
	a.absinfo.minimum = min;
	a.absinfo.maximum = max;
	a.absinfo.resolution = res;
	if (ioctl(fd, UI_ABS_SETUP, &a) < 0) die("UI_ABS_SETUP");
}

/* Finger `slot` (tracking id `id`, -1: lifted) at (x, y). */
static void finger(int slot, int id, int x, int y) {
	ev(EV_ABS, ABS_MT_SLOT, slot);
	ev(EV_ABS, ABS_MT_TRACKING_ID, id);
	if (id >= 0) {
		ev(EV_ABS, ABS_MT_POSITION_X, x);
		ev(EV_ABS, ABS_MT_POSITION_Y, y);
	}
}

static int clamp(int v) { return v < 0 ? 0 : v > MAX ? MAX : v; }

int main(int argc, char **argv) {
	if (argc < 5 || (strcmp(argv[1], "hold") && strcmp(argv[1], "pinch")) ||
	    (!strcmp(argv[1], "pinch") && argc < 6)) {
		fprintf(stderr, "usage: kiosk-touch hold X Y MS | pinch X Y FROM TO (0..32767)\n");
		return 2;
	}
	int x = atoi(argv[2]), y = atoi(argv[3]);
	fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK);
	if (fd < 0) die("/dev/uinput (modprobe uinput)");
	if (ioctl(fd, UI_SET_EVBIT, EV_KEY) < 0 || ioctl(fd, UI_SET_KEYBIT, BTN_TOUCH) < 0 ||
	    ioctl(fd, UI_SET_KEYBIT, BTN_TOOL_FINGER) < 0 ||
	    ioctl(fd, UI_SET_KEYBIT, BTN_TOOL_DOUBLETAP) < 0 || ioctl(fd, UI_SET_EVBIT, EV_ABS) < 0 ||
	    ioctl(fd, UI_SET_PROPBIT, INPUT_PROP_DIRECT) < 0)
		die("UI_SET_*BIT");
	int axes[] = {ABS_X, ABS_Y, ABS_MT_SLOT, ABS_MT_TRACKING_ID, ABS_MT_POSITION_X,
		      ABS_MT_POSITION_Y};
	for (unsigned i = 0; i < sizeof axes / sizeof *axes; i++)
		if (ioctl(fd, UI_SET_ABSBIT, axes[i]) < 0) die("UI_SET_ABSBIT");
	/* A 10.1" panel: 217 x 136 mm, so about 150 units per mm. */
	abs_axis(ABS_X, 0, MAX, 150);
	abs_axis(ABS_Y, 0, MAX, 240);
	abs_axis(ABS_MT_SLOT, 0, 9, 0);
	abs_axis(ABS_MT_TRACKING_ID, 0, 65535, 0);
	abs_axis(ABS_MT_POSITION_X, 0, MAX, 150);
	abs_axis(ABS_MT_POSITION_Y, 0, MAX, 240);
	struct uinput_setup s;
	memset(&s, 0, sizeof s);
	s.id.bustype = BUS_USB;
	s.id.vendor = 0x4b54; /* "KT" */
	s.id.product = 0x0001;
	strcpy(s.name, "Ketang test touchscreen");
	if (ioctl(fd, UI_DEV_SETUP, &s) < 0) die("UI_DEV_SETUP");
	if (ioctl(fd, UI_DEV_CREATE) < 0) die("UI_DEV_CREATE");
	sleep_ms(2500); /* udev, libinput and the compositor take the new device */
	if (!strcmp(argv[1], "hold")) {
		int ms = atoi(argv[4]);
		finger(0, 1, x, y);
		ev(EV_KEY, BTN_TOUCH, 1);
		ev(EV_KEY, BTN_TOOL_FINGER, 1);
		ev(EV_ABS, ABS_X, x);
		ev(EV_ABS, ABS_Y, y);
		syn();
		sleep_ms(ms);
		finger(0, -1, 0, 0);
		ev(EV_KEY, BTN_TOUCH, 0);
		ev(EV_KEY, BTN_TOOL_FINGER, 0);
		syn();
	} else {
		int from = atoi(argv[4]), to = atoi(argv[5]), steps = 20;
		for (int i = 0; i <= steps; i++) {
			int d = (from + (to - from) * i / steps) / 2;
			finger(0, 1, clamp(x - d), y);
			finger(1, 2, clamp(x + d), y);
			if (i == 0) {
				ev(EV_KEY, BTN_TOUCH, 1);
				ev(EV_KEY, BTN_TOOL_DOUBLETAP, 1);
			}
			ev(EV_ABS, ABS_X, clamp(x - d));
			ev(EV_ABS, ABS_Y, y);
			syn();
			sleep_ms(25);
		}
		finger(0, -1, 0, 0);
		finger(1, -1, 0, 0);
		ev(EV_KEY, BTN_TOUCH, 0);
		ev(EV_KEY, BTN_TOOL_DOUBLETAP, 0);
		syn();
	}
	sleep_ms(500);
	ioctl(fd, UI_DEV_DESTROY);
	close(fd);
	printf("kiosk-touch: %s done\n", argv[1]);
	return 0;
}
