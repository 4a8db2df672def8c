/** The GPU target picks the GEMM path: wgmma tiles need sm_90a; sm_80 / sm_90 get mma.sync tiles. */
import { describe, expect, it } from "vitest";
import def from "../../examples/tiny-hybrid.js";
import { emitProject } from "../../compiler/codegen/project.js";
import { DEFAULT_GEMM_TILES, gemmConfigType } from "../../compiler/kernels/gemm.js";
import { defaultTiles } from "../../compiler/kernels/tiles.js";

describe("--arch", () => {
  it("sm_90a GEMMs use the warp-specialized wgmma config, sm_80 and sm_90 the mma.sync config", () => {
    const gemms = (arch: "sm_90a" | "sm_90" | "sm_80") => emitProject(def, { arch }).kernels.filter((k) => k.spec.template === "gemm.cu.hbs");
    const hopper = gemms("sm_90a");
    expect(hopper.length).toBeGreaterThan(0);
    const maxTokens = emitProject(def).manifest.maxTokens as number;
    // the tile config is one typed value: rendered into the template and written to the manifest;
    // untuned, the wave model's tiles for the project's max tokens and the kernel's N
    for (const k of hopper) {
      const want = defaultTiles("forward", "wgmma", maxTokens, k.spec.tiles.n as number);
      expect(k.source).toContain(`gemm_launch<${gemmConfigType(want)}, Epi>`);
      expect(k.source).toContain("WsConfig<");
      expect(k.spec.tiles).toMatchObject(want);
    }
    for (const arch of ["sm_80", "sm_90"] as const) {
      const ks = gemms(arch);
      expect(ks.length).toBe(hopper.length);
      for (const k of ks) {
        expect(k.source).toContain(`gemm_launch<${gemmConfigType(DEFAULT_GEMM_TILES.mma)}, Epi>`);
        expect(k.spec.tiles).toMatchObject(DEFAULT_GEMM_TILES.mma);
        expect(k.source).not.toContain("Wgmma");
      }
    }
  });

  it("the manifest records the target", () => {
    expect(emitProject(def, { arch: "sm_80" }).manifest.arch).toBe("sm_80");
    expect(emitProject(def).manifest.arch).toBe("sm_90a");
  });
});
