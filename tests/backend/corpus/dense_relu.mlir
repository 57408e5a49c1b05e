// h = relu(W x + b) in the shape fuse-loops produces: the reduction starts
// from 0 and the bias and the activation form an epilogue after it.
builtin.module {
  func.func @dense_relu(%W: memref<${M}x${K}x${T}>, %x: memref<${K}x${T}>, %b: memref<${M}x${T}>, %h: memref<${M}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant ${M} : index
    %k = arith.constant ${K} : index
    %zero = arith.constant 0.0 : ${T}
    scf.for %i = %c0 to %m step %c1 {
      %acc = scf.for %j = %c0 to %k step %c1 iter_args(%a = %zero) -> (${T}) {
        %w = memref.load %W[%i, %j] : memref<${M}x${K}x${T}>
        %xv = memref.load %x[%j] : memref<${K}x${T}>
        %p = arith.mulf %w, %xv : ${T}
        %s = arith.addf %a, %p : ${T}
        scf.yield %s : ${T}
      }
      %bi = memref.load %b[%i] : memref<${M}x${T}>
      %z = arith.addf %acc, %bi : ${T}
      %r = arith.maximumf %z, %zero : ${T}
      memref.store %r, %h[%i] : memref<${M}x${T}>
    }
    func.return
  }
}
