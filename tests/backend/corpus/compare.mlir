// z[i] = (x[i] PRED y[i]) ? 1 : 0 with arith.cmpf (float) or arith.cmpi on
// the values converted to i64 (integer), predicate ${PRED}.
builtin.module {
  func.func @compare(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>, %zf: memref<${N}x${T}>, %zi: memref<${N}xi64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    %one = arith.constant 1.0 : ${T}
    %zero = arith.constant 0.0 : ${T}
    %i1 = arith.constant 1 : i64
    %i0 = arith.constant 0 : i64
    scf.for %i = %c0 to %n step %c1 {
      %a = memref.load %x[%i] : memref<${N}x${T}>
      %b = memref.load %y[%i] : memref<${N}x${T}>
      %p = arith.cmpf ${PRED}, %a, %b : ${T}
      %r = arith.select %p, %one, %zero : ${T}
      memref.store %r, %zf[%i] : memref<${N}x${T}>
      %ai = arith.fptosi %a : ${T} to i64
      %bi = arith.fptosi %b : ${T} to i64
      %q = arith.cmpi ${IPRED}, %ai, %bi : i64
      %s = arith.select %q, %i1, %i0 : i64
      memref.store %s, %zi[%i] : memref<${N}xi64>
    }
    func.return
  }
}
