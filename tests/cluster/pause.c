/* The pod sandbox's process (what registry.k8s.io/pause does): it holds the pod's namespaces and
 * sleeps until it is told to stop. No registry can be reached here, so the cluster test builds
 * this as a static binary and imports it as the pause image. */
#include <signal.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    for (;;) {
        pause();
    }
}
