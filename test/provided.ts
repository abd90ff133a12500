/** Values test/global-setup.ts provides to the workers project (vitest inject). */
declare module "vitest" {
  export interface ProvidedContext {
    cloudPort: number;
    mismatchedCloudPort: number;
    closedPort: number;
    hmacSecret: string;
  }
}

export {};
