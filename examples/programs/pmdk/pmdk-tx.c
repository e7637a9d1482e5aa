/*
 * PMDK workload for `pmemlab record` (see README.md): a libpmemobj pool on a
 * virtio-pmem device's backing file, N transactions.
 *
 *   pmdk-tx create POOL SIZE   create the pool (before the recorded run: its
 *                              content becomes the durable start of the trace)
 *   pmdk-tx run POOL MARKS N   open the pool and commit N transactions
 *   pmdk-tx check POOL         open the pool (libpmemobj's recovery replays or
 *                              rolls back an interrupted transaction), walk
 *                              it, print the last transaction it holds
 *   pmdk-tx check -            the same for every pool path read from stdin,
 *                              one line of answer each (`n` or `fail: why`)
 *
 * Transaction k (1..N) allocates a node {k, value(k), next}, pushes it on the
 * root's list, and sets root.count = k and root.sum += value(k) (undo-logged
 * with pmemobj_tx_add_range). After pmemobj_tx_end returned, `run` stores k at
 * offset 8*k of MARKS (pwrite, no flush): the trace shows where each commit
 * returned. On a file that is not DAX-mapped (the pool on virtio-pmem's
 * backing file here, as in a guest without MAP_SYNC), libpmemobj's first
 * mmap asks for MAP_SYNC, gets EOPNOTSUPP, maps without it, and makes stores
 * durable with msync: exactly the virtio-pmem contract.
 */
#include <libpmemobj.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAYOUT "pmemlab-pmdk-tx"

struct node {
	uint64_t k;
	uint64_t value;
	PMEMoid next;
};

struct root {
	uint64_t count;
	uint64_t sum;
	PMEMoid head;
};

static uint64_t value(uint64_t k) { return k * 2654435761u % 1000003u; }

static int create(const char *pool, size_t size)
{
	PMEMobjpool *pop = pmemobj_create(pool, LAYOUT, size, 0666);
	if (pop == NULL) {
		fprintf(stderr, "pmdk-tx: %s: pmemobj_create: %s\n", pool, pmemobj_errormsg());
		return 1;
	}
	pmemobj_root(pop, sizeof(struct root));
	pmemobj_close(pop);
	return 0;
}

static int run(const char *pool, const char *marks, uint64_t n)
{
	PMEMobjpool *pop = pmemobj_open(pool, LAYOUT);
	if (pop == NULL) {
		fprintf(stderr, "pmdk-tx: %s: pmemobj_open: %s\n", pool, pmemobj_errormsg());
		return 1;
	}
	int mfd = open(marks, O_RDWR);
	if (mfd < 0) {
		perror(marks);
		return 1;
	}
	PMEMoid root_oid = pmemobj_root(pop, sizeof(struct root));
	struct root *root = pmemobj_direct(root_oid);
	for (uint64_t k = 1; k <= n; k++) {
		int failed = 0;
		TX_BEGIN(pop) {
			PMEMoid oid = pmemobj_tx_alloc(sizeof(struct node), 1);
			struct node *node = pmemobj_direct(oid);
			node->k = k;
			node->value = value(k);
			node->next = root->head;
			pmemobj_tx_add_range(root_oid, 0, sizeof(struct root));
			root->head = oid;
			root->count = k;
			root->sum += value(k);
		} TX_ONABORT {
			failed = 1;
		} TX_END
		if (failed) {
			fprintf(stderr, "pmdk-tx: transaction %" PRIu64 " aborted: %s\n", k, pmemobj_errormsg());
			return 1;
		}
		if (pwrite(mfd, &k, sizeof k, (off_t)(8 * k)) != sizeof k) {
			perror(marks);
			return 1;
		}
		printf("committed %" PRIu64 "\n", k);
	}
	pmemobj_close(pop);
	return 0;
}

static int check(const char *pool)
{
	PMEMobjpool *pop = pmemobj_open(pool, LAYOUT);
	if (pop == NULL) {
		printf("fail: pmemobj_open: %s\n", pmemobj_errormsg());
		return 1;
	}
	struct root *root = pmemobj_direct(pmemobj_root(pop, sizeof(struct root)));
	uint64_t want = root->count, sum = 0;
	for (PMEMoid oid = root->head; !OID_IS_NULL(oid); want--) {
		struct node *node = pmemobj_direct(oid);
		if (want == 0 || node->k != want || node->value != value(want)) {
			printf("fail: the list does not hold %" PRIu64 "..1 (count %" PRIu64 ")\n", want, root->count);
			pmemobj_close(pop);
			return 1;
		}
		sum += node->value;
		oid = node->next;
	}
	if (want != 0 || sum != root->sum) {
		printf("fail: the list ends at %" PRIu64 " or its sum %" PRIu64 " is not the root's %" PRIu64 "\n", want, sum,
		       root->sum);
		pmemobj_close(pop);
		return 1;
	}
	printf("%" PRIu64 "\n", root->count);
	pmemobj_close(pop);
	return 0;
}

/* `check -`: one pool path a line on stdin, one answer line each. */
static int check_each(void)
{
	char line[4096];
	while (fgets(line, sizeof line, stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		check(line);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "create") == 0)
		return create(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 5 && strcmp(argv[1], "run") == 0)
		return run(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "check") == 0)
		return strcmp(argv[2], "-") == 0 ? check_each() : check(argv[2]);
	fprintf(stderr, "usage: pmdk-tx create POOL SIZE | pmdk-tx run POOL MARKS N | pmdk-tx check POOL|-\n");
	return 2;
}
