import { defineConfig } from 'vitest/config';

// Integration tests build loop devices, file systems and child processes:
// they run one file at a time so that two tests never race for /dev/loop*.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
