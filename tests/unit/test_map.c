#include "common/map.h"
#include "tests/unit/unit.h"

TEST(map_put_get_remove)
{
    hk_map_t m = {0};
    int values[1000];
    CHECK(hk_map_get(&m, 1) == NULL);
    CHECK(hk_map_remove(&m, 1) == NULL);
    for (int i = 0; i < 1000; i++)
        CHECK_INT_EQ(hk_map_put(&m, (uint64_t)i * 7919, &values[i]), 0);
    CHECK_INT_EQ(m.count, 1000);
    for (int i = 0; i < 1000; i++)
        CHECK(hk_map_get(&m, (uint64_t)i * 7919) == &values[i]);
    CHECK(hk_map_get(&m, 3) == NULL);
    /* Remove every other key; the rest must stay reachable (backward shift). */
    for (int i = 0; i < 1000; i += 2)
        CHECK(hk_map_remove(&m, (uint64_t)i * 7919) == &values[i]);
    CHECK_INT_EQ(m.count, 500);
    for (int i = 0; i < 1000; i++)
        CHECK(hk_map_get(&m, (uint64_t)i * 7919) == (i % 2 ? &values[i] : NULL));
    /* Overwrite keeps the count. */
    CHECK_INT_EQ(hk_map_put(&m, 7919, &values[0]), 0);
    CHECK_INT_EQ(m.count, 500);
    CHECK(hk_map_get(&m, 7919) == &values[0]);
    hk_map_free(&m);
}

TEST(map_colliding_keys)
{
    /* Many keys in one small table: clusters wrap around the end. */
    hk_map_t m = {0};
    int v[12];
    for (int i = 0; i < 12; i++)
        hk_map_put(&m, (uint64_t)i << 40, &v[i]);
    for (int i = 11; i >= 0; i--) {
        CHECK(hk_map_remove(&m, (uint64_t)i << 40) == &v[i]);
        for (int j = 0; j < i; j++)
            CHECK(hk_map_get(&m, (uint64_t)j << 40) == &v[j]);
    }
    CHECK_INT_EQ(m.count, 0);
    hk_map_free(&m);
}
