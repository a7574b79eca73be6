// The parts of cli-progress 3.12 (a CommonJS package without its own types)
// that `ferry migrate`'s progress view uses; written here rather than adding
// @types/cli-progress, so the one dependency stays the one package.
declare module 'cli-progress' {
  namespace cliProgress {
    interface Options {
      stream?: NodeJS.WritableStream;
      format?: string;
      barsize?: number;
      hideCursor?: boolean;
      clearOnComplete?: boolean;
      stopOnComplete?: boolean;
      fps?: number;
      gracefulExit?: boolean;
      linewrap?: boolean;
      noTTYOutput?: boolean;
    }
    interface Preset {
      barCompleteChar: string;
      barIncompleteChar: string;
      format: string;
    }
    class SingleBar {
      constructor(options: Options, preset?: Preset);
      start(total: number, startValue: number, payload?: Record<string, unknown>): void;
      update(value: number, payload?: Record<string, unknown>): void;
      setTotal(total: number): void;
      stop(): void;
    }
    class MultiBar {
      constructor(options: Options, preset?: Preset);
      create(total: number, startValue: number, payload?: Record<string, unknown>): SingleBar;
      remove(bar: SingleBar): boolean;
      log(text: string): void;
      /** Draws a frame now (logged lines first). */
      update(): void;
      stop(): void;
    }
    const Presets: { legacy: Preset; shades_classic: Preset; shades_grey: Preset; rect: Preset };
  }
  export = cliProgress;
}
